/* Unit tests of src/client/ against a real HTTP server: a forked child
 * listening on a Unix socket (and on 127.0.0.1 for $SKIFF_URL=http://...)
 * in a temporary directory, answering canned bytes. libcurl is not mocked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/util.h"
#include "client/client.h"

static char tmpdir[] = "/tmp/skiff-test-client-XXXXXX";
static char sock_path[256];
static int tcp_port;
static pid_t server_pid;

/* ---- the server ---------------------------------------------------------- */

static void send_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w <= 0) return;
    p += w;
    n -= (size_t)w;
  }
}

static void respond(int fd, int status, const char *reason, const char *ctype,
                    const char *body) {
  char head[512];
  int n = snprintf(head, sizeof head,
                   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
                   "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                   status, reason, ctype, strlen(body));
  send_all(fd, head, (size_t)n);
  send_all(fd, body, strlen(body));
}

/* Serves one request on fd: reads the head and the body, answers by path. */
static void serve(int fd) {
  char req[65536];
  size_t len = 0;
  char *end = NULL;
  while (!end && len < sizeof req - 1) {
    ssize_t r = read(fd, req + len, sizeof req - 1 - len);
    if (r <= 0) return;
    len += (size_t)r;
    req[len] = '\0';
    end = strstr(req, "\r\n\r\n");
  }
  if (!end) return;
  size_t clen = 0;
  const char *cl = strcasestr(req, "\r\nContent-Length:");
  if (cl && cl < end) clen = strtoul(cl + 17, NULL, 10);
  size_t have = len - (size_t)(end + 4 - req);
  while (have < clen && len < sizeof req - 1) {
    ssize_t r = read(fd, req + len, sizeof req - 1 - len);
    if (r <= 0) return;
    len += (size_t)r;
    have += (size_t)r;
  }
  req[len] = '\0';
  char method[16] = "", path[1024] = "";
  if (sscanf(req, "%15s %1023s", method, path) != 2) return;
  const char *body = end + 4;

  if (strcmp(path, "/v1/ok") == 0) {
    respond(fd, 200, "OK", "application/json",
            "{\"hello\": \"world\", \"n\": 3}");
  } else if (strcmp(path, "/v1/echo") == 0) {
    const char *ct = strcasestr(req, "\r\nContent-Type: application/json");
    char out[70000];
    snprintf(out, sizeof out,
             "{\"method\": \"%s\", \"json\": %s, \"body\": %s}", method,
             ct && ct < end ? "true" : "false", *body ? body : "null");
    respond(fd, 201, "Created", "application/json", out);
  } else if (strcmp(path, "/v1/apps/nope") == 0) {
    respond(fd, 404, "Not Found", "application/json",
            "{\"error\": {\"code\": \"not_found\", "
            "\"message\": \"no app named 'nope'\"}}");
  } else if (strcmp(path, "/v1/conflict") == 0) {
    respond(fd, 409, "Conflict", "application/json",
            "{\"error\": {\"code\": \"conflict\", "
            "\"message\": \"app ap-1 is stopped; deploy it again\"}}");
  } else if (strcmp(path, "/v1/boom") == 0) {
    respond(fd, 500, "Internal Server Error", "text/plain", "kaboom\n");
  } else if (strcmp(path, "/v1/garbage") == 0) {
    respond(fd, 200, "OK", "application/json", "{not json");
  } else if (strcmp(path, "/v1/empty") == 0) {
    respond(fd, 200, "OK", "application/json", "");
  } else if (strcmp(path, "/v1/slow") == 0) {
    /* Answer after 3 s, or give up as soon as the client hangs up. */
    struct pollfd pf = {fd, POLLIN, 0};
    if (poll(&pf, 1, 3000) != 0) return;
    respond(fd, 200, "OK", "application/json", "{}");
  } else if (strcmp(path, "/v1/hangup") == 0) {
    /* Close without answering. */
  } else {
    respond(
        fd, 404, "Not Found", "application/json",
        "{\"error\": {\"code\": \"not_found\", \"message\": \"no route\"}}");
  }
}

static void server_loop(int ufd, int tfd) {
  signal(SIGCHLD, SIG_IGN); /* no zombies from the per-connection children */
  /* Do not hold the test's output open (ctest waits for it to close). */
  int devnull = open("/dev/null", O_WRONLY);
  if (devnull >= 0) {
    dup2(devnull, STDOUT_FILENO);
    dup2(devnull, STDERR_FILENO);
    close(devnull);
  }
  struct pollfd p[2] = {{ufd, POLLIN, 0}, {tfd, POLLIN, 0}};
  for (;;) {
    if (poll(p, 2, -1) < 0) continue;
    for (int i = 0; i < 2; i++) {
      if (!(p[i].revents & POLLIN)) continue;
      int c = accept(p[i].fd, NULL, NULL);
      if (c < 0) continue;
      pid_t pid = fork();
      if (pid == 0) {
        serve(c);
        shutdown(c, SHUT_WR);
        close(c);
        _exit(0);
      }
      close(c);
    }
  }
}

static int setup(void **state) {
  (void)state;
  if (!mkdtemp(tmpdir)) return -1;
  snprintf(sock_path, sizeof sock_path, "%s/skiffd.sock", tmpdir);

  int ufd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  if (strlen(sock_path) >= sizeof sun.sun_path) return -1;
  memcpy(sun.sun_path, sock_path, strlen(sock_path) + 1);
  if (ufd < 0 || bind(ufd, (struct sockaddr *)&sun, sizeof sun) < 0 ||
      listen(ufd, 64) < 0)
    return -1;

  int tfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET};
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t sl = sizeof sin;
  if (tfd < 0 || bind(tfd, (struct sockaddr *)&sin, sizeof sin) < 0 ||
      listen(tfd, 64) < 0 || getsockname(tfd, (struct sockaddr *)&sin, &sl) < 0)
    return -1;
  tcp_port = ntohs(sin.sin_port);

  server_pid = fork();
  if (server_pid < 0) return -1;
  if (server_pid == 0) server_loop(ufd, tfd);
  close(ufd);
  close(tfd);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  if (server_pid > 0) {
    kill(server_pid, SIGKILL);
    waitpid(server_pid, NULL, 0);
  }
  err_t err = ERR_INIT;
  rm_rf(tmpdir, &err);
  return 0;
}

/* ---- tests --------------------------------------------------------------- */

static client_t *open_unix(void) {
  client_t *c = NULL;
  err_t err = ERR_INIT;
  char spec[300];
  snprintf(spec, sizeof spec, "unix://%s", sock_path);
  assert_int_equal(client_open(&c, spec, &err), 0);
  return c;
}

static void test_get_json(void **state) {
  (void)state;
  client_t *c = open_unix();
  err_t err = ERR_INIT;
  long status = -1;
  json_t *resp = NULL;
  assert_int_equal(
      client_request(c, "GET", "/v1/ok", NULL, &status, &resp, &err), 0);
  assert_int_equal(status, 200);
  assert_non_null(resp);
  assert_string_equal(json_string_value(json_object_get(resp, "hello")),
                      "world");
  assert_int_equal(json_integer_value(json_object_get(resp, "n")), 3);
  json_decref(resp);
  /* The same client serves a second request (connection handling). */
  assert_int_equal(client_request(c, "GET", "/v1/ok", NULL, NULL, NULL, &err),
                   0);
  assert_string_equal(client_socket_path(c), sock_path);
  client_free(c);
}

static void test_post_json_body(void **state) {
  (void)state;
  client_t *c = open_unix();
  err_t err = ERR_INIT;
  long status = 0;
  json_t *resp = NULL;
  json_t *body = json_pack("{s:s, s:i}", "name", "hello \"world\"", "cpu", 2);
  assert_int_equal(
      client_request(c, "POST", "/v1/echo", body, &status, &resp, &err), 0);
  json_decref(body);
  assert_int_equal(status, 201);
  assert_string_equal(json_string_value(json_object_get(resp, "method")),
                      "POST");
  assert_true(json_is_true(json_object_get(resp, "json")));
  json_t *echoed = json_object_get(resp, "body");
  assert_string_equal(json_string_value(json_object_get(echoed, "name")),
                      "hello \"world\"");
  assert_int_equal(json_integer_value(json_object_get(echoed, "cpu")), 2);
  json_decref(resp);

  /* A POST without a body sends an empty one. */
  assert_int_equal(
      client_request(c, "POST", "/v1/echo", NULL, &status, &resp, &err), 0);
  assert_true(json_is_null(json_object_get(resp, "body")));
  json_decref(resp);
  client_free(c);
}

static void test_error_message_verbatim(void **state) {
  (void)state;
  client_t *c = open_unix();
  err_t err = ERR_INIT;
  long status = 0;
  json_t *resp = (json_t *)1;
  int r = client_request(c, "GET", "/v1/apps/nope", NULL, &status, &resp, &err);
  assert_int_equal(r, -ENOENT);
  assert_int_equal(err.code, -ENOENT);
  assert_int_equal(status, 404);
  assert_null(resp);
  assert_string_equal(err.msg, "no app named 'nope'");
  assert_string_equal(client_error_code(c), "not_found");

  r = client_request(c, "POST", "/v1/conflict", NULL, &status, NULL, &err);
  assert_int_equal(r, -EBUSY);
  assert_int_equal(status, 409);
  assert_string_equal(err.msg, "app ap-1 is stopped; deploy it again");
  assert_string_equal(client_error_code(c), "conflict");

  /* A later success clears the error code. */
  assert_int_equal(client_request(c, "GET", "/v1/ok", NULL, NULL, NULL, &err),
                   0);
  assert_string_equal(client_error_code(c), "");
  client_free(c);
}

static void test_error_not_json(void **state) {
  (void)state;
  client_t *c = open_unix();
  err_t err = ERR_INIT;
  long status = 0;
  int r = client_request(c, "GET", "/v1/boom", NULL, &status, NULL, &err);
  assert_int_equal(r, -EIO);
  assert_int_equal(status, 500);
  assert_string_equal(err.msg,
                      "skiffd answered HTTP 500 to GET /v1/boom: kaboom");
  client_free(c);
}

static void test_invalid_json_and_empty(void **state) {
  (void)state;
  client_t *c = open_unix();
  err_t err = ERR_INIT;
  json_t *resp = NULL;
  int r = client_request(c, "GET", "/v1/garbage", NULL, NULL, &resp, &err);
  assert_int_equal(r, -EPROTO);
  assert_null(resp);
  assert_non_null(strstr(err.msg,
                         "skiffd sent invalid JSON in answer to "
                         "GET /v1/garbage"));

  assert_int_equal(
      client_request(c, "GET", "/v1/empty", NULL, NULL, &resp, &err), 0);
  assert_true(json_is_object(resp));
  assert_int_equal(json_object_size(resp), 0);
  json_decref(resp);
  client_free(c);
}

static void test_connection_refused(void **state) {
  (void)state;
  /* No socket at all. */
  char missing[300];
  snprintf(missing, sizeof missing, "%s/absent.sock", tmpdir);
  client_t *c = NULL;
  err_t err = ERR_INIT;
  assert_int_equal(client_open(&c, missing, &err), 0);
  int r = client_request(c, "GET", "/v1/status", NULL, NULL, NULL, &err);
  assert_int_equal(r, -ECONNREFUSED);
  char want[600];
  snprintf(want, sizeof want,
           "cannot reach skiffd at %s: No such file or directory", missing);
  assert_string_equal(err.msg, want);
  client_free(c);

  /* A socket file nobody listens on (a daemon that died). */
  char stale[300];
  snprintf(stale, sizeof stale, "%s/stale.sock", tmpdir);
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  assert_true(strlen(stale) < sizeof sun.sun_path);
  memcpy(sun.sun_path, stale, strlen(stale) + 1);
  assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof sun), 0);
  close(fd);
  assert_int_equal(client_open(&c, stale, &err), 0);
  r = client_request(c, "GET", "/v1/status", NULL, NULL, NULL, &err);
  assert_int_equal(r, -ECONNREFUSED);
  snprintf(want, sizeof want, "cannot reach skiffd at %s: Connection refused",
           stale);
  assert_string_equal(err.msg, want);
  client_free(c);
}

static void test_timeout_and_hangup(void **state) {
  (void)state;
  client_t *c = open_unix();
  err_t err = ERR_INIT;
  client_set_timeout_ms(c, 300);
  assert_int_equal(client_timeout_ms(c), 300);
  int r = client_request(c, "GET", "/v1/slow", NULL, NULL, NULL, &err);
  assert_int_equal(r, -ETIMEDOUT);
  assert_non_null(strstr(err.msg, "did not answer GET /v1/slow within 0.3 s"));

  client_set_timeout_ms(c, 5000);
  r = client_request(c, "GET", "/v1/hangup", NULL, NULL, NULL, &err);
  assert_int_equal(r, -ECONNRESET);
  assert_non_null(strstr(err.msg, "lost the connection to skiffd at"));
  client_free(c);
}

static void test_resolve_skiff_url(void **state) {
  (void)state;
  client_target_t t;
  err_t err = ERR_INIT;
  bool from_env = false;

  setenv("SKIFF_URL", "unix:///run/skiff/skiffd.sock", 1);
  assert_int_equal(client_resolve_target(&t, &from_env, &err), 0);
  assert_true(from_env);
  assert_string_equal(t.socket_path, "/run/skiff/skiffd.sock");
  assert_string_equal(t.base_url, "");

  setenv("SKIFF_URL", "http://10.0.0.5:7557/", 1);
  assert_int_equal(client_resolve_target(&t, &from_env, &err), 0);
  assert_string_equal(t.socket_path, "");
  assert_string_equal(t.base_url, "http://10.0.0.5:7557");

  setenv("SKIFF_URL", "ftp://x", 1);
  assert_int_equal(client_resolve_target(&t, &from_env, &err), -EINVAL);
  assert_string_equal(err.msg,
                      "SKIFF_URL: bad skiffd address 'ftp://x': "
                      "expected http://HOST:PORT or "
                      "unix:///path/to/skiffd.sock");
  setenv("SKIFF_URL", "unix://relative.sock", 1);
  assert_int_equal(client_resolve_target(&t, &from_env, &err), -EINVAL);
  setenv("SKIFF_URL", "http://host:1/v1", 1);
  assert_int_equal(client_resolve_target(&t, &from_env, &err), -EINVAL);

  /* Without SKIFF_URL: $SKIFF_HOME/skiffd.sock. */
  unsetenv("SKIFF_URL");
  setenv("SKIFF_HOME", tmpdir, 1);
  assert_int_equal(client_resolve_target(&t, &from_env, &err), 0);
  assert_false(from_env);
  assert_string_equal(t.socket_path, sock_path);

  /* client_open(NULL) follows the same order, and both kinds work. */
  client_t *c = NULL;
  assert_int_equal(client_open(&c, NULL, &err), 0);
  assert_int_equal(client_request(c, "GET", "/v1/ok", NULL, NULL, NULL, &err),
                   0);
  client_free(c);

  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d", tcp_port);
  setenv("SKIFF_URL", url, 1);
  assert_int_equal(client_open(&c, NULL, &err), 0);
  assert_null(client_socket_path(c));
  assert_string_equal(client_url(c), url);
  json_t *resp = NULL;
  long status = 0;
  assert_int_equal(
      client_request(c, "GET", "/v1/ok", NULL, &status, &resp, &err), 0);
  assert_int_equal(status, 200);
  assert_string_equal(json_string_value(json_object_get(resp, "hello")),
                      "world");
  json_decref(resp);
  assert_int_equal(
      client_request(c, "GET", "/v1/apps/nope", NULL, &status, NULL, &err),
      -ENOENT);
  assert_string_equal(err.msg, "no app named 'nope'");
  client_free(c);

  /* Nothing listens on port 1: refused. */
  setenv("SKIFF_URL", "http://127.0.0.1:1", 1);
  assert_int_equal(client_open(&c, NULL, &err), 0);
  assert_int_equal(
      client_request(c, "GET", "/v1/status", NULL, NULL, NULL, &err),
      -ECONNREFUSED);
  assert_non_null(strstr(err.msg,
                         "cannot reach skiffd at "
                         "http://127.0.0.1:1: "));
  client_free(c);
  unsetenv("SKIFF_URL");
}

static void test_escape(void **state) {
  (void)state;
  char *e = client_escape("my app/1?x=y");
  assert_string_equal(e, "my%20app%2F1%3Fx%3Dy");
  free(e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_get_json),
      cmocka_unit_test(test_post_json_body),
      cmocka_unit_test(test_error_message_verbatim),
      cmocka_unit_test(test_error_not_json),
      cmocka_unit_test(test_invalid_json_and_empty),
      cmocka_unit_test(test_connection_refused),
      cmocka_unit_test(test_timeout_and_hangup),
      cmocka_unit_test(test_resolve_skiff_url),
      cmocka_unit_test(test_escape),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
