/* h2o's headers, included once for src/web with the warnings that they
 * trip under -Wextra silenced (they are h2o's, not ours). */
#ifndef SKIFF_WEB_H2O_LIB_H
#define SKIFF_WEB_H2O_LIB_H

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#include <h2o.h>
#include <h2o/http1.h>
#include <h2o/http1client.h>
#include <h2o/socket/uv-binding.h>
#include <h2o/tunnel.h>
#pragma GCC diagnostic pop

#endif
