"""Renders bench results (JSON lines) as bench/README.md.

usage: report.py RESULTS.jsonl OUT.md ELAPSED_S BUILD_DIR
"""
import json
import os
import platform
import subprocess
import sys
import statistics
import time

HERE = os.path.dirname(os.path.abspath(__file__))
med = statistics.median


def load(path):
    r = {}
    with open(path) as fh:
        for line in fh:
            line = line.strip()
            if line:
                d = json.loads(line)
                r.setdefault(d["key"], []).append(d)
    return r


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              cwd=HERE).stdout.decode().strip()
    except Exception:
        return ""


def machine():
    cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
    mem = sh("awk '/MemTotal/ {printf \"%.1f GiB\", $2/1048576}' /proc/meminfo")
    deb = sh("cat /etc/debian_version")
    pyv = sh("/usr/bin/python3 -c 'import platform; print(platform.python_version())'")
    return (f"Debian {deb}, kernel {platform.release()}, {os.cpu_count()} CPUs ({cpu or 'unknown CPU'}), "
            f"{mem} RAM; /usr/bin/python3 {pyv}")


def fmt_ms(v):
    if v is None:
        return "n/a"
    return f"{v:.3f} ms" if v < 1 else (f"{v:.2f} ms" if v < 10 else f"{v:.1f} ms")


def fmt_rate(v, unit):
    return "n/a" if v is None else f"{v:,.0f} {unit}"


def ratio_time(skiff, peer):
    if not skiff or not peer:
        return ""
    r = skiff / peer
    return f"skiff {r:.1f}x slower" if r >= 1 else f"skiff {1 / r:.1f}x faster"


def ratio_rate(skiff, peer):
    if not skiff or not peer:
        return ""
    r = skiff / peer
    return f"skiff {r:.1f}x faster" if r >= 1 else f"skiff {1 / r:.1f}x slower"


# ---- Images ------------------------------------------------------------------------------------
def fmt_s(v):
    return "n/a" if v is None else (f"{v:.2f} s" if v < 10 else f"{v:.1f} s")


def fmt_mb(v):
    return "n/a" if v is None else f"{v / 1e6:,.1f} MB" if v >= 1e6 else f"{v / 1e3:,.0f} kB"


def times(a, b, what="of"):
    """'a is N.Nx b' as text, for ratios that are not skiff-vs-peer."""
    if not a or not b:
        return ""
    return f"{a / b:.2f}x {what}"


def render_images(R):
    """The "## Images" section (list of lines), or [] when no image results."""
    if not any(k.startswith("img.") for k in R):
        return []

    def one(key, field=None, default=None):
        v = R.get(key)
        if not v:
            return default
        return v[-1] if field is None else v[-1].get(field, default)

    rows = []
    # 1. start on a cached image
    ci, ch = one("img.cold_image"), one("img.cold_host")
    if ci:
        s = ci["median_ms"]
        sec = f"1. start on a cached image, cold container (median of {ci['n']}, lower is better)"
        rows.append((sec, f"skiff `f.remote()` on a new app, image = debian_slim + 1 `run_commands` step "
                     f"({ci.get('layers')} layers), to result", fmt_ms(s), ""))
        if ch:
            rows.append(("", "skiff, the same on the host root (`Image.from_host()`), interleaved with the above",
                         fmt_ms(ch["median_ms"]), f"image {times(s, ch['median_ms'], 'host root')}"))
        rows.append(("", "skiff, image: container record to user module imported inside",
                     fmt_ms(ci["container_to_module_import_ms"]),
                     f"host root: {fmt_ms(ch['container_to_module_import_ms'])}" if ch else ""))
        peers = [("img.peer.host.pass", "`python3 -c pass` on the host"),
                 ("img.peer.host.runner", "`python3 -c 'import skiff._container'` on the host"),
                 ("img.peer.runc.pass", "`runc run`, rootfs = the image's layers merged (overlay), `python3 -c pass`"),
                 ("img.peer.runc.runner", "`runc run`, same rootfs, `python3 -c 'import skiff._container'`")]
        for cfg in ("podman_default", "podman_crun", "podman_crun_nocg", "podman_runc"):
            lab = one(f"img.peer.{cfg}.pass", "label") or cfg
            lab = lab[len("podman "):] if lab.startswith("podman ") else lab
            peers.append((f"img.peer.{cfg}.pass", f"`podman run --rm` ({lab}), the image imported, `python3 -c pass`"))
            peers.append((f"img.peer.{cfg}.runner", f"`podman run --rm` ({lab}), `python3 -c 'import skiff._container'`"))
        for key, name in peers:
            r = one(key)
            if r is None:
                continue
            if r.get("median_ms") is not None:
                rows.append(("", name, fmt_ms(r["median_ms"]), ratio_time(s, r["median_ms"])))
            else:
                err = (r.get("error") or "failed").replace("|", "/").replace("\n", " ")
                if "Error:" in err:
                    err = err[err.index("Error:"):]
                rows.append(("", name, "did not run: " + (err[:160] if len(err) <= 160 else err[:160] + "..."), ""))
        pm = one("img.podman")
        if pm and (pm.get("error") or pm.get("missing")):
            rows.append(("", "podman", "not measured: " + (pm.get("error") or pm.get("missing"))[:200], ""))

    # 2. mount
    mh = one("img.mount.host")
    merr = one("img.mount", "error")
    if mh or merr:
        sec = f"2. overlay mount of a container root, `mount(2)` (median of {mh['n'] if mh else '?'}, lower is better)"
        if merr:
            rows.append((sec, "mount harness", "failed: " + merr[:200], ""))
            sec = ""
        names = {"host": "host root: lowerdir=/ (what `Image.from_host()` mounts)",
                 "base": "debian_slim, 1 layer (+ the scaffold)",
                 "small": "debian_slim + 1 step, 2 layers (+ scaffold)",
                 "deep": "debian_slim + 19 steps, 20 layers (+ scaffold)",
                 "flat": "a 50-layer image after its flattening: 1 directory (+ scaffold)"}
        base = one("img.mount.base", "mount_ms")
        for k in ("host", "base", "small", "deep", "flat"):
            r = one(f"img.mount.{k}")
            if not r:
                continue
            ref = mh["mount_ms"] if k == "base" else base
            rat = times(r["mount_ms"], ref, "host root" if k == "base" else "1 layer") if k != "host" else ""
            rows.append((sec, f"{names[k]}; umount {fmt_ms(r['umount_ms'])}; `chroot ROOT python3 -c pass` "
                         f"{fmt_ms(r['chroot_python_ms'])}", fmt_ms(r["mount_ms"]), rat))
            sec = ""
        fl = one("img.flatten")
        if fl and fl.get("flattened_before"):
            cb = one("img.chain_build") or {}
            rows.append(("", f"a {fl['layers']}-layer image (> 48), flattened by its build "
                         f"(import + flatten of {fl['flat_files']:,} files: {cb.get('flat_import_s', 0):.2f} s): "
                         f"its first cold start; later ones {fmt_ms(fl['later_median_ms'])}",
                         fmt_ms(fl["first_ms"]), times(fl["first_ms"], fl["later_median_ms"], "a later start")))
        elif fl:
            extra = fl["first_ms"] - fl["later_median_ms"]
            rows.append(("", f"one-time flatten of a {fl['layers']}-layer image (> 48): its first cold start "
                         f"{fmt_ms(fl['first_ms'])} minus the median of later ones {fmt_ms(fl['later_median_ms'])} "
                         f"({fl['flat_files']:,} files hard-linked)", fmt_ms(extra),
                         times(fl["first_ms"], fl["later_median_ms"], "a later start")))

    # 3. disk
    d = one("img.disk")
    if d:
        sec = "3. disk used by two images sharing most files (lower is better)"
        tsum = d["a_apparent"] + d["b_apparent"]
        rows.append((sec, "A = debian_slim.apt_install('jq') and B = debian_slim.run_commands('touch /x')"
                     f".apt_install('jq'), each measured alone (`du -sb` of its layers) and summed "
                     f"(their records' `size`: {fmt_mb(d['a_size'])} + {fmt_mb(d['b_size'])})", fmt_mb(tsum), ""))
        rows.append(("", "the same two in one store: `du -sb` over both images' layers "
                     "(a hard-linked file counted once)", fmt_mb(d["union_apparent"]),
                     times(d["union_apparent"], tsum, "the sum")))
        rows.append(("", f"in disk blocks (`du -sB1`): A alone {fmt_mb(d['a_disk'])} + B alone "
                     f"{fmt_mb(d['b_disk'])} = {fmt_mb(d['a_disk'] + d['b_disk'])}; both together",
                     fmt_mb(d["union_disk"]), times(d["union_disk"], d["a_disk"] + d["b_disk"], "the sum")))
        am, bm = d.get("a_top_meta") or {}, d.get("b_top_meta") or {}
        rows.append(("", f"the `apt_install('jq')` layers (different keys: B's has another parent): "
                     f"A's {fmt_mb(d['a_top_apparent'])} + B's {fmt_mb(d['b_top_apparent'])}; both together",
                     fmt_mb(d["tops_apparent"]), times(d["tops_apparent"], d["a_top_apparent"] + d["b_top_apparent"],
                                                       "the sum")))
        if bm:
            rows.append(("", f"B's jq layer: bytes new to the store (`layer.json` `new_bytes`), of its "
                         f"{fmt_mb(bm.get('bytes'))} in {bm.get('files')} files ({bm.get('new_files')} new)",
                         fmt_mb(bm.get("new_bytes")), times(bm.get("new_bytes"), bm.get("bytes"), "its bytes")))

    # 4. cold build
    cb, db = R.get("img.cold_build", []), R.get("img.debootstrap", [])
    if cb or db:
        sec = "4. cold build of `Image.debian_slim()`, empty store (lower is better)"
        cbs = [x["seconds"] for x in cb if "seconds" in x]
        dbs = [x["seconds"] for x in db if "seconds" in x]
        s = med(cbs)
        runs = ", ".join(f"{x:.1f} s" for x in cbs)
        if cbs:
            meta = next(x for x in cb if "seconds" in x)
            rows.append((sec, f"skiff `skiff image build` (CLI to image id; runs: {runs}; "
                         f"{meta.get('files', 0):,} files, {fmt_mb(meta.get('bytes'))})", fmt_s(s), ""))
        else:
            rows.append((sec, "skiff `skiff image build`", "failed: " + (cb[-1].get("error", "") if cb else "")[:200], ""))
        if dbs:
            meta = next(x for x in db if "seconds" in x)
            rows.append(("", "`debootstrap --variant=minbase --include=python3,python3-pip,ca-certificates "
                         f"bookworm DIR` alone, same mirror ({fmt_mb(meta.get('bytes'))})", fmt_s(med(dbs)),
                         ratio_time(s, med(dbs))))
        elif db:
            rows.append(("", "debootstrap alone", "failed: " + db[-1].get("error", "")[:200], ""))
        cc = [x["seconds"] for x in R.get("img.cached_build_cli", [])]
        if cc:
            rows.append(("", "the same `skiff image build` again (stored: answered at once; CLI + SDK start)",
                         fmt_ms(med(cc) * 1e3), ""))
        sb = one("img.small_build", "seconds")
        if sb is not None:
            rows.append(("", "for scale: a `run_commands` step on the stored base (one build container, commit)",
                         fmt_ms(sb * 1e3), ""))

    run = one("img.run") or {}
    pm = one("img.podman") or {}
    lines = []
    w = lines.append
    w("## Images")
    w("")
    w(f"- run: {time.strftime('%Y-%m-%d %H:%M %Z')}, {run.get('seconds', 0):.0f} s "
      f"(parts: {', '.join(run.get('parts', []))}); store seeded from {one('img.store', 'seeded_from') or 'n/a'}")
    if pm:
        rt = (pm.get("runtimes") or "").replace("\n", ", ")
        w(f"- peers: {pm.get('version', 'podman ?')} ({rt}); {sh('debootstrap --version 2>/dev/null') or 'debootstrap'}")
    w("")
    w("| benchmark | system | median | ratio |")
    w("|---|---|---|---|")
    for sec, sysname, val, rat in rows:
        w(f"| {sec} | {sysname} | {val} | {rat} |")
    w("")
    w("How these are measured (`bench/bench_images.py`, run by `bench/run`; `BENCH_ONLY=images` runs")
    w("only this part and replaces only this section). skiffd runs with a private image store that")
    w("holds only debian_slim (copied from `BENCH_IMAGE_CACHE`, or made by this run's cold build).")
    w("**1.** As the cold-start row above: a new ephemeral app each time (so no warm container), the")
    w("time of its first `.remote()` to the result, image and host-root apps alternating. The peers")
    w("run on the same root file system: the image's layers merged by an overlay mount, given to")
    w("`runc run` as its rootfs, and tarred into `podman import`; podman runs with `--network none`")
    w("(skiff's containers have no network either), the SDK bind-mounted, and")
    w("`--ulimit nofile=1024:1024 --ulimit nproc=1024:1024` (podman's default limits are refused on")
    w("this machine); wall time of the command from Python, after 2 warm-ups. **2.** A harness in a")
    w("private mount namespace mounts each case's overlay exactly as the runtime does (the layers as")
    w("lower directories top first, a scaffold of mount points below them, a fresh upper and work")
    w("directory) with ctypes `mount(2)`, unmounts it, the cases taking turns; then runs")
    w("`chroot ROOT python3 -c pass` on each (path lookups through the layers). The flattened image")
    w("is an OCI layout (debian_slim's files as one layer, then one small file per layer) imported")
    w("with `Image.from_oci` (quicker to make than 50 build steps). **3.** `du`")
    w("counts a hard-linked inode once per invocation: one `du` per image gives each image's own")
    w("size, one `du` over both gives the store's real use. **4.** `skiff image build` of a file")
    w("holding `Image.debian_slim()` against a daemon with an empty store, wall time to the image")
    w("id, next to the `debootstrap` it runs, with the same arguments, timed alone just before it.")
    w("")
    return lines


# ---- Autoscaler --------------------------------------------------------------------------------
def render_autoscale(R):
    """The "## Autoscaler" section (list of lines), or [] when no autoscaler results."""
    if not any(k.startswith("as.") for k in R):
        return []

    def one(key):
        v = R.get(key)
        return v[-1] if v else None

    def wait(r, p):
        v = r.get(f"p{p}_ms")
        return ("≥ " if r.get(f"p{p}_lower_bound") else "") + fw(r.get(f"p{p}_ms"))

    def fw(ms):  # a wait: ms below 1 s
        return fmt_ms(ms) if ms is not None and ms < 1000 else fmt_s(ms / 1e3 if ms is not None else None)

    def times(a, b, what):  # 2 digits below 10x, none above
        return "" if not a or not b else f"{a / b:.2f}x {what}" if a / b < 10 else f"{a / b:,.0f}x {what}"

    cfg = one("as.config") or {}
    tr = {s: one(f"as.trace.{s}") for s in ("auto", "peak", "one")}
    pk = tr["peak"]
    names = {"auto": f"skiff autoscaled: `min_containers=0, max_containers={cfg.get('max')}, "
                     + ("buffer_containers=1, " if cfg.get("buffer_supported") else "(buffer_containers refused by the SDK) ")
                     + f"scaledown_window={cfg.get('scaledown_s', 5):g}`",
             "peak": f"reserve for the peak: `min_containers={cfg.get('max')}, max_containers={cfg.get('max')}` (always on)",
             "one": "one container: `max_containers=1`"}
    rows = []
    sec = (f"1. bursty trace, {cfg.get('requests', '?'):,} requests of a {cfg.get('body_ms', 200):.0f} ms body: "
           f"container-seconds in one {tr['auto']['window_s']:.0f} s window (lower is better)" if tr["auto"] else
           "1. bursty trace: container-seconds (lower is better)")
    for s in ("auto", "peak", "one"):
        r = tr[s]
        if not r:
            continue
        extra = (f" (at most {r['peak_live']} live, {r['containers_started']} started)" if s == "auto" else
                 f" ({r['cut_off']:,} of {r['n']:,} not started by the window's end)" if s == "one" and r["cut_off"] else "")
        rows.append((sec, names[s] + extra, f"{r['container_s']:,.0f} container-s",
                     times(r["container_s"], pk and pk["container_s"], "peak's")))
        sec = ""
    if pk and pk.get("body_container_s"):
        rows.append(("", "the work itself: sum of the bodies' run times (a floor for any system)",
                     f"{pk['body_container_s']:,.0f} container-s", times(pk["body_container_s"], pk["container_s"], "peak's")))
    for p, title in ((50, "2. same trace: queue wait (body start - submit), p50 (lower is better)"),
                     (99, "3. same trace: queue wait, p99 (lower is better)")):
        sec = title
        for s in ("auto", "peak", "one"):
            r = tr[s]
            if not r:
                continue
            rows.append((sec, names[s].split(":")[0], wait(r, p),
                         times(r[f"p{p}_ms"], pk and pk[f"p{p}_ms"], "peak's") if s != "peak" else ""))
            sec = ""
    sec = "4. same trace: trace start to the last result (lower is better)"
    for s in ("auto", "peak", "one"):
        r = tr[s]
        if not r:
            continue
        v = r.get("end_to_end_s")
        rows.append((sec, names[s].split(":")[0], fmt_s(v) if v is not None else
                     f"not done: {r['cut_off']:,} cut off at {r['window_s']:.0f} s", ""))
        sec = ""
    sc = one("as.scale")
    if sc:
        sec = f"5. scale from 0 to {sc['max']} containers, {sc['max']} inputs of a {sc['body_s']:g} s body at once (median of {sc['n']}, lower is better)"
        rows.append((sec, f"{sc['max']} container records (`started_at` of the {sc['max']}th)", fmt_s(sc.get("to_nth_record_s")), ""))
        rows.append(("", f"{sc['max']} containers `running`", fmt_s(sc.get("to_n_running_s"))
                     if sc.get("to_n_running_s") is not None else "not reached in 60 s", ""))
        nb = sc.get("distinct_body_containers") or []
        rows.append(("", f"{sc['max']} distinct containers have started a body (containers that ran bodies, per run: "
                     f"{', '.join(str(x) for x in nb)})",
                     fmt_s(sc.get("to_n_bodies_s")) if sc.get("to_n_bodies_s") is not None else
                     f"not reached ({sc['runs_reaching_bodies']} of {sc['n']} runs did)", ""))
        if sc.get("all_done_s") is not None:
            rows.append(("", f"all {sc['max']} results back (containers recorded per run: "
                         f"{', '.join(str(x) for x in sc.get('containers') or [])}; most alive at once: {sc.get('max_overlap')})",
                         fmt_s(sc["all_done_s"]), times(sc["all_done_s"], sc["body_s"], "one body")))

    lines = []
    w = lines.append
    w("## Autoscaler")
    w("")
    w(f"`bench/bench_autoscale.py` (`BENCH_ONLY=autoscale` runs it alone and rewrites only this section); "
      f"{time.strftime('%Y-%m-%d %H:%M %Z')}, skiff commit "
      f"{os.environ.get('SKIFF_BENCH_REV') or sh('git rev-parse --short HEAD')}; its own skiffd, host root image, cpu={cfg.get('cpu', 0):g} per container "
      f"({cfg.get('cpus')} CPUs: skiffd never oversubscribes CPU requests), memory 128 MiB.")
    w(f"Trace: {cfg.get('idle_s', 0):g} s idle, {cfg.get('spike_n', 0):,} requests within {cfg.get('spike_s', 0):g} s, "
      f"then arrivals falling linearly from {cfg.get('decline_rate', 0):g}/s to 0 over {cfg.get('decline_s', 0):g} s, "
      f"then {cfg.get('tail_s', 0):g} s or more of quiet; one `.spawn()` per request. {cfg.get('max')} containers "
      f"serve at most {cfg.get('max', 0) * 1000 / (cfg.get('body_ms') or 200):,.0f} requests/s, so the spike alone keeps "
      f"them all busy for {cfg.get('spike_n', 0) * (cfg.get('body_ms') or 200) / 1000 / (cfg.get('max') or 1):g} s: "
      "even reserving for the peak queues.")
    w("")
    w("| benchmark | system | median | ratio |")
    w("|---|---|---|---|")
    for sec, sysname, val, rat in rows:
        w(f"| {sec} | {sysname} | {val} | {rat} |")
    w("")
    notes = []
    a = tr["auto"]
    if a:
        notes.append(f"`auto`: first container {fw((a.get('first_container_after_spike_s') or 0) * 1e3)} after the spike's start, "
                     f"{a['peak_live']} live (sampled every 0.15 s) {fmt_s(a.get('peak_live_reached_after_spike_s'))} after it; "
                     f"most container records overlapping in time: {a['peak_overlap_records']} "
                     f"(max_containers {a['max_containers']}{': EXCEEDED' if max(a['peak_live'], a['peak_overlap_records']) > a['max_containers'] else ''}); "
                     f"queue wait of the spike's requests p50 {fw(a['spike_p50_ms'])}, p99 {fw(a['spike_p99_ms'])}; "
                     f"of the decline's p50 {fw(a['decline_p50_ms'])}, p99 {fw(a['decline_p99_ms'])}.")
    if a and a.get("first_scale_down_after_spike_s") is not None:
        notes.append(f"`auto` first fell below {a['peak_live']} live containers "
                     f"{fmt_s(a['first_scale_down_after_spike_s'])} after the spike's start (the decline ends "
                     f"{cfg.get('spike_s', 0) + cfg.get('decline_s', 0):g} s after it).")
    for s in ("auto", "peak"):
        r = tr[s]
        if r and r.get("gaps"):
            notes.append(f"`{s}`: bodies took {fmt_ms(r['body_p50_ms'])} (p50); on one container, from a body's end to "
                         f"the next waiting request's body start: p50 {fmt_ms(r['gap_p50_ms'])}, "
                         f"p90 {fmt_ms(r['gap_p90_ms'])} ({r['gaps']:,} gaps).")
    for s in ("auto", "peak", "one"):
        r = tr[s]
        if r:
            notes.append(f"`{s}`: submitting took {r['submit_s']:.1f} s, the submitters ran up to "
                         f"{fmt_ms(r['submit_lag_max_ms'])} behind the trace (p99 {fmt_ms(r['submit_lag_p99_ms'])}); "
                         f"`.spawn()` answered in {fmt_ms(r['accept_p50_ms'])} (p99 {fmt_ms(r['accept_p99_ms'])}).")
    for n in notes:
        w(f"- {n}")
    w("")
    w("Container-seconds: each container's record (`GET /v1/containers?app=`), `started_at` to `exited_at`,")
    w("clipped to a window as long for the three: from the trace's start until `auto` has scaled back to")
    w("zero (at least the trace and its quiet tail); `peak`'s containers were started and running before")
    w("the trace. Queue waits use wall clocks on the same host. `one` cannot serve the trace in the")
    w("window: requests not started at its end count as waiting until then, and its percentiles are")
    w("lower bounds (≥). Run to run noise on this 2-CPU machine is large; compare rows of one run only.")
    w("")
    return lines


# ---- Hot path ----------------------------------------------------------------------------------
# The rows the "## Hot path" section reads (one JSON object per line in the results file):
#   calls.remote.skiff, calls.remote.pool (bench/bench_calls.py, part `calls`):
#       {"p50_ms", "p99_ms", "mean_ms", "n"}; without them, skiff.remote and pool.remote of part
#       `rt` (which also carry p50_ms and p99_ms) are shown instead
#   calls.clients.skiff, calls.clients.pool (part `calls`):
#       {"calls_per_s", "p50_ms", "p99_ms", "clients", "per_client", "seconds", "n"}
#   part `mapscale`: bench/bench_map_scale.py, started by bench/run with a skiffd of its own
#   (its pid in BENCH_SKIFFD_PID) and the sizes in BENCH_MAPSCALE_NS, appends to argv[1]:
#       {"key": "mapscale.skiff", "n": N, "seconds": S, "inputs_per_s": R,
#        "skiffd_peak_rss_mib": M, "caller_peak_rss_mib": M}       one per N (several: best rate
#                                                                  and largest RSS are shown)
#       {"key": "mapscale.pool", "n": N, "chunksize": C, "inputs_per_s": R}
#                                                                  one per N and chunksize; chunksize 1
#                                                                  among them; "best" is the highest rate
#       {"key": "mapscale.error", "reason": "...", "n": N, "system": "skiff"|"pool"}
#                                                                  a size that did not run (n and system
#                                                                  optional: without n, the whole part)
#       {"key": "mapscale.missing", "reason": "..."}               written by bench/run without the script
#   retention.cycle, retention.summary, retention.error (bench/bench_retention.py, part `retention`);
#   retention_off.* the same on a daemon started without the retention options (BENCH_RET_OPTS=0)
HOT_PREFIXES = ("calls.", "mapscale.", "retention.", "retention_off.")
MAPSCALE_NS = (10000, 100000, 1000000)
AIM_REMOTE_P50_MS, AIM_REMOTE_RATIO = 0.5, 2.5  # warm .remote(): p50, and p50 over ProcessPool's
AIM_CLIENTS_RATE, AIM_CLIENTS_P99_MS = 5000, 5.0  # 8 client processes


def not_measured(R, part, prefix, n=None):
    """Why a Hot path row has no data, as its value."""
    for key in (f"{prefix}.error", f"{prefix}.missing"):
        for r in reversed(R.get(key, [])):
            if n is None or r.get("n") in (None, n):
                why = " ".join(str(r.get("reason") or "failed").replace("|", "/").split())
                return "not measured: " + (why if len(why) <= 400 else why[:400] + "...")
    ran = os.environ.get("BENCH_ONLY")
    if ran and part not in ran.split(","):
        return f"not measured: part `{part}` was not run (BENCH_ONLY={ran})"
    return f"not measured: part `{part}` gave no result (see the output of bench/run)"


def aim(ok, text):
    return f"{text}: {'met' if ok else 'not met'}" if ok is not None else ""


def fmt_mib(v):
    return "n/a" if v is None else f"{v:,.0f} MiB"


def render_hot(R):
    """The "## Hot path" section (list of lines), or [] when this run measured none of it
    and none of its parts was asked for."""
    ran = [p for p in (os.environ.get("BENCH_ONLY") or "").split(",") if p in ("calls", "mapscale", "retention")]
    if not ran and not any(k.startswith(HOT_PREFIXES) for k in R):
        return []

    def one(key):
        v = R.get(key)
        return v[-1] if v else None

    rows = []  # (benchmark, system, value, ratio, aim)

    # 1. map of N trivial inputs
    sk = {}
    rates = {}
    for r in R.get("mapscale.skiff", []):
        b = sk.setdefault(r["n"], dict(r))
        rates.setdefault(r["n"], []).append(r["inputs_per_s"])
        for f in ("skiffd_peak_rss_mib", "caller_peak_rss_mib"):
            if r.get(f) is not None:
                b[f] = max(b.get(f) or 0, r[f])
    for n, v in rates.items():  # the median of the runs at each size
        v = sorted(v)
        sk[n]["inputs_per_s"] = v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2
        sk[n]["runs"] = len(v)
    pool = {}
    for r in R.get("mapscale.pool", []):
        pool.setdefault(r["n"], []).append(r)
    env_ns = os.environ.get("BENCH_MAPSCALE_NS", "")
    want = [int(x) for x in env_ns.split(",") if x.strip().isdigit()] or list(MAPSCALE_NS)
    ns = sorted(set(want) | set(sk) | set(pool)) if sk or pool else []
    sec = "1. map of N trivial inputs, `sum(f.map(range(N)))` (inputs/s, higher is better)"
    if not ns:
        rows.append((sec, f"skiff and ProcessPoolExecutor(2), N = {', '.join(f'{n:,}' for n in want)}",
                     not_measured(R, "mapscale", "mapscale"), "", ""))
    for n in ns:
        s, ps = sk.get(n), pool.get(n, [])
        best = max(ps, key=lambda r: r["inputs_per_s"]) if ps else None
        c1 = next((r for r in ps if r.get("chunksize") == 1), None)
        label = f"N = {n:,}: "
        if s:
            runs = s.get("runs", 1)
            rows.append((sec, label + "skiff" + (f" (median of {runs} runs)" if runs > 1 else ""),
                         fmt_rate(s["inputs_per_s"], "inputs/s"),
                         ratio_rate(s["inputs_per_s"], best and best["inputs_per_s"]) + (" (best ProcessPool)" if best else ""), ""))
            rows.append(("", label + "skiff, peak RSS of skiffd / of the caller",
                         f"{fmt_mib(s.get('skiffd_peak_rss_mib'))} / {fmt_mib(s.get('caller_peak_rss_mib'))}", "", ""))
        else:
            rows.append((sec, label + "skiff", not_measured(R, "mapscale", "mapscale", n), "", ""))
        sec = ""
        if c1:
            rows.append(("", label + "ProcessPoolExecutor(2) `map(f, range(N), chunksize=1)`",
                         fmt_rate(c1["inputs_per_s"], "inputs/s"), ratio_rate(s and s["inputs_per_s"], c1["inputs_per_s"]), ""))
        if best and best is not c1:
            tried = ", ".join(str(r.get("chunksize")) for r in ps)
            rows.append(("", label + f"ProcessPoolExecutor(2), best chunksize {best.get('chunksize')} (tried {tried})",
                         fmt_rate(best["inputs_per_s"], "inputs/s"), ratio_rate(s and s["inputs_per_s"], best["inputs_per_s"]), ""))
        if not ps:
            rows.append(("", label + "ProcessPoolExecutor(2)", not_measured(R, "mapscale", "mapscale", n), "", ""))
    if len(sk) >= 2:
        lo, hi = min(sk), max(sk)
        r = sk[hi]["inputs_per_s"] / sk[lo]["inputs_per_s"]
        bl = [max(pool[m], key=lambda x: x["inputs_per_s"])["inputs_per_s"] for m in (lo, hi) if pool.get(m)]
        peer = f"best ProcessPool: {bl[1] / bl[0]:.2f}x" if len(bl) == 2 else ""
        rows.append(("", f"skiff: rate at N = {hi:,} over rate at N = {lo:,} (1.00x: flat in N)", f"{r:.2f}x", peer, ""))

    # 2. warm .remote()
    sec = "2. warm `.remote()` round trip, one caller (p50 / p99, lower is better)"
    s, p = one("calls.remote.skiff"), one("calls.remote.pool")
    src = ""
    if s is None and (one("skiff.remote") or {}).get("p50_ms") is not None:
        s, src = one("skiff.remote"), " (from part `rt`)"
    if p is None and (one("pool.remote") or {}).get("p50_ms") is not None:
        p = one("pool.remote")
    if s:
        ok = None if not p else s["p50_ms"] / p["p50_ms"] <= AIM_REMOTE_RATIO
        rows.append((sec, f"skiff `f.remote(x)`, warm container, {s['n']:,} calls{src}",
                     f"p50 {fmt_ms(s['p50_ms'])}, p99 {fmt_ms(s['p99_ms'])}", "",
                     aim(s["p50_ms"] <= AIM_REMOTE_P50_MS, f"p50 ≤ {AIM_REMOTE_P50_MS} ms")
                     + ("; " + aim(ok, f"p50 ≤ {AIM_REMOTE_RATIO}x ProcessPool's") if ok is not None else "")))
    else:
        rows.append((sec, "skiff `f.remote(x)`, warm container", not_measured(R, "calls", "calls"), "", ""))
    if p:
        rows.append(("", f"ProcessPoolExecutor(2) `submit(f, x).result()`, {p['n']:,} calls",
                     f"p50 {fmt_ms(p['p50_ms'])}, p99 {fmt_ms(p['p99_ms'])}",
                     (f"p50: {ratio_time(s['p50_ms'], p['p50_ms'])}; p99: {ratio_time(s['p99_ms'], p['p99_ms'])}") if s else "", ""))
    else:
        rows.append(("", "ProcessPoolExecutor(2) `submit(f, x).result()`", not_measured(R, "calls", "calls"), "", ""))

    # 3. several clients at once
    s, p = one("calls.clients.skiff"), one("calls.clients.pool")
    k = (s or p or {}).get("clients", 8)
    per = (s or p or {}).get("per_client", 1000)
    sec = f"3. {k} clients at once x {per:,} `.remote()` each (calls/s higher, latency lower is better)"
    if s:
        rows.append((sec, f"skiff: {k} processes, each its own connection (containers at the end: {s.get('containers', '?')})",
                     f"{s['calls_per_s']:,.0f} calls/s; p50 {fmt_ms(s['p50_ms'])}, p99 {fmt_ms(s['p99_ms'])}", "",
                     aim(s["calls_per_s"] >= AIM_CLIENTS_RATE, f"≥ {AIM_CLIENTS_RATE:,} calls/s") + "; "
                     + aim(s["p99_ms"] < AIM_CLIENTS_P99_MS, f"p99 < {AIM_CLIENTS_P99_MS:g} ms")))
    else:
        rows.append((sec, f"skiff: {k} processes", not_measured(R, "calls", "calls"), "", ""))
    if p:
        rows.append(("", f"ProcessPoolExecutor(2) shared by {k} threads of one process, `submit(f, x).result()`",
                     f"{p['calls_per_s']:,.0f} calls/s; p50 {fmt_ms(p['p50_ms'])}, p99 {fmt_ms(p['p99_ms'])}",
                     f"calls/s: {ratio_rate(s['calls_per_s'], p['calls_per_s'])}; p99: {ratio_time(s['p99_ms'], p['p99_ms'])}" if s else "",
                     ""))
    else:
        rows.append(("", "ProcessPoolExecutor(2) shared by threads", not_measured(R, "calls", "calls"), "", ""))

    # 4. database size under retention
    sec = "4. `skiff.db` + `-wal` after repeated maps (lower is better)"
    for prefix, what in (("retention", "with result retention"), ("retention_off", "without retention options")):
        sm = one(f"{prefix}.summary")
        if sm is None:
            if prefix == "retention":
                rows.append((sec, f"skiff {what}", not_measured(R, "retention", "retention"), "", ""))
                sec = ""
            continue
        cyc = {r["cycle"]: r for r in R.get(f"{prefix}.cycle", [])}
        opts = f" `{sm['retention']}` (sweep every `{sm['interval']}`)" if sm.get("retention") else ""
        c2, cl = cyc.get(2, {}), cyc.get(sm["cycles"], {})
        rows.append((sec, f"skiff {what}{opts}, after map 2 of {sm['cycles']} (N = {sm['n']:,}; "
                     f"db {fmt_mb(c2.get('db_bytes'))} + wal {fmt_mb(c2.get('wal_bytes'))})",
                     fmt_mb(sm["cycle2_bytes"]), "", ""))
        sec = ""
        rows.append(("", f"skiff {what}, after map {sm['cycles']} (db {fmt_mb(cl.get('db_bytes'))} + wal "
                     f"{fmt_mb(cl.get('wal_bytes'))}; all: {', '.join(fmt_mb(x) for x in sm.get('sizes', []))})",
                     fmt_mb(sm["last_bytes"]), times(sm["last_bytes"], sm["cycle2_bytes"], "map 2's"), ""))

    lines = []
    w = lines.append
    w("## Hot path")
    w("")
    w("| benchmark | system | value | ratio | aim |")
    w("|---|---|---|---|---|")
    for sec, sysname, val, rat, goal in rows:
        w(f"| {sec} | {sysname} | {val} | {rat} | {goal} |")
    w("")
    w("How these are measured (parts `calls`, `mapscale` and `retention` of `bench/run`; any of")
    w("them alone rewrites only this section). **1.** `bench/bench_map_scale.py` on a daemon of its")
    w("own: the time from the call to the last result of `sum(f.map(range(N)))`, and")
    w("ProcessPoolExecutor(2) `map` with chunksize 1 and the best of the chunksizes it tries; peak")
    w("RSS is `VmHWM` of skiffd and of the calling process. **2.** `bench/bench_calls.py`: after 20")
    w("warm-up calls, `BENCH_CALLS_N` (1000) calls one after another, each timed; skiff on a deployed")
    w("app with a warm container, the peer on a started pool. **3.** `BENCH_CALLS_CLIENTS` (8) client")
    w("processes (fork), each with its own connection and the function looked up with")
    w("`Function.from_name`, released together after 20 warm-up calls each, `BENCH_CALLS_N` calls")
    w("each; calls/s is all calls over the span from the first start to the last end, the")
    w("percentiles over all calls. The peer is 8 threads of one process on one shared")
    w("ProcessPoolExecutor(2) (processes cannot share a pool); it runs after skiffd is stopped.")
    w("**4.** `bench/bench_retention.py` starts a skiffd with a short `--result-retention` (and the")
    w("hidden `--retention-interval`), runs `BENCH_RET_CYCLES` (10) maps of `BENCH_RET_N` (100,000)")
    w("inputs in one app, and after each waits the retention plus two sweep intervals, then until the")
    w("file sizes stop changing, and records the size of `skiff.db` plus `skiff.db-wal`.")
    w("")
    # The profile of a map (bench/profile_map.py writes it; it needs perf).
    prof = os.path.join(os.path.dirname(os.path.abspath(__file__)), "profile.md")
    if os.path.exists(prof):
        with open(prof) as f:
            lines.extend(f.read().rstrip("\n").split("\n"))
        w("")
    return lines



def part_section(R, part, title):
    """The start of the section of a bench part: (lines, one, done). lines
    holds the heading (and, when the part failed, why: then done is True);
    one(key) is the last result of key."""

    def one(key):
        v = R.get(key)
        return v[-1] if v else None

    lines = [title, ""]
    err = one(f"{part}.error")
    if err:
        lines += [f"Not measured: {err.get('reason')}", ""]
    return lines, one, bool(err)

def render_web(R):
    """The "## Web endpoints" section (list of lines), or [] when part `web`
    gave no results (bench/bench_web.py)."""
    if not any(k.startswith("web.") for k in R):
        return []
    out, one, done = part_section(R, "web", "## Web endpoints")
    if done:
        return out
    w = out.append
    uv = one("web.rps.uvicorn")
    first = next((r for r in (one("web.rps.skiff_1"),) if r), None) or {}
    w(f"Part `web` (bench/bench_web.py): the same trivial ASGI app (one JSON answer, no framework) under "
      f"`wrk -t2 -c{first.get('conns', 64)} -d{first.get('seconds', 10)}s`, the median of "
      f"{first.get('runs', '?')} runs each; skiff serves it through its ingress (h2o) to a container's "
      "runner, whose own asyncio server runs the app; uvicorn serves it directly, and nginx proxies to "
      "that uvicorn with keep-alive.")
    w("")
    w("| system | requests/s | p50 | p99 | vs uvicorn (req/s) | vs uvicorn (p99) | non-2xx |")
    w("|---|---|---|---|---|---|---|")
    for key in ("web.rps.skiff_1", "web.rps.skiff_4", "web.rps.uvicorn", "web.rps.nginx_uvicorn"):
        r = one(key)
        if not r:
            continue
        if "error" in r:
            w(f"| {key.split('.')[-1]} | failed: {r['error']} | | | | | |")
            continue
        rr = f"{r['rps'] / uv['rps']:.2f}x" if uv and uv.get("rps") else ""
        rp = f"{r['p99_ms'] / uv['p99_ms']:.2f}x" if uv and uv.get("p99_ms") and r.get("p99_ms") else ""
        w(f"| {r['system']} | {r['rps']:,.0f} | {fmt_ms(r['p50_ms'])} | {fmt_ms(r['p99_ms'])} | {rr} | {rp} "
          f"| {r['non_2xx']} |")
    w("")
    s1, s4 = one("web.rps.skiff_1"), one("web.rps.skiff_4")
    if s1 and s4 and s1.get("rps") and s4.get("rps"):
        w(f"4 containers against 1: {s4['rps'] / s1['rps']:.2f}x the requests/s (this machine has "
          f"{os.cpu_count()} CPUs).")
        w("")
    cold = one("web.cold")
    if cold:
        w(f"First request to an endpoint with no container, to its response: p50 {fmt_ms(cold['p50_ms'])}, "
          f"p99 {fmt_ms(cold['p99_ms'])} over {cold['n']} (aim under 100 ms; Knative's own figures are 4-15 s).")
        w("")
    return out



def render_vol(R):
    """The "## Volumes" section (list of lines), or [] when part `vol` gave
    no results (bench/bench_volume.py)."""
    if not any(k.startswith("vol.") for k in R):
        return []
    out, one, done = part_section(R, "vol", "## Volumes")
    if done:
        return out
    w = out.append
    hc, cc = one("vol.read.host_cold"), one("vol.read.ct_cold")
    hw, cw = one("vol.read.host_warm"), one("vol.read.ct_warm")
    if hc and cc:
        w(f"Part `vol` (bench/bench_volume.py): a sequential read of a {cc.get('mib')} MiB volume file in 8 MiB "
          f"reads, inside a container (its read-write mount: the overlay over the version's tree) and on the "
          f"host (the same file in the version's tree), median of {len(cc.get('samples', []))}. Cold: the file's "
          "pages dropped first (posix_fadvise DONTNEED on that file); warm: read again at once.")
        w("")
        w("| read | container MiB/s | host disk MiB/s | container / host |")
        w("|---|---|---|---|")
        for label, c_, h_ in (("cold (from the disk)", cc, hc), ("warm (page cache)", cw, hw)):
            if c_ and h_:
                w(f"| {label} | {c_['mib_per_s']:,.0f} | {h_['mib_per_s']:,.0f} | "
                  f"{c_['mib_per_s'] / h_['mib_per_s']:.2f}x |")
        w("")
        w("Aim: at least 0.9x the host disk. Both read the same inode through the same page cache and "
          "disk (the overlay passes reads to the version's file); a ratio above 1 is the spread between "
          "runs, not a gain.")
        w("")
    cm = one("vol.commit.skiff")
    disk = [(k, v[-1]) for k, v in R.items() if k.startswith("vol.commit_disk.")]
    if cm or disk:
        w("Commit latency of 1,000 files of 4 KiB into a volume holding "
          f"{(cm or {}).get('existing', 10000):,} (median of {len((cm or {}).get('samples', [])) or 5}):")
        w("")
        w("| commit | ms |")
        w("|---|---|")
        if cm:
            w(f"| `vol.commit()` inside a container (its layer gathered, copied, published, synced) | "
              f"{cm['ms']:,.1f} |")
        for _, v in disk:
            w(f"| {v['label']} (bench/volume_commit.c) | {v['ms']:,.1f} |")
        w("")
    return out

def render_dq(R):
    """The "## Dicts and Queues" section (list of lines), or [] when part
    `dq` gave no results (bench/bench_dq.py)."""
    if not any(k.startswith("dq.") for k in R):
        return []

    def one(key):
        v = R.get(key)
        return v[-1] if v else None

    out = []
    w = out.append
    w("## Dicts and Queues")
    w("")
    err = one("dq.error")
    if err:
        w(f"Not measured: {err.get('reason')}")
        w("")
        return out
    first = one("dq.dict_put.skiff") or {}
    w(f"Part `dq` (bench/bench_dq.py): operations per second from one Python client (/usr/bin/python3), "
      f"the median of {len(first.get('samples', [])) or '?'} rounds; skiff's SDK over the Unix socket against "
      "python3-redis over loopback TCP, a 120-byte value each, pickled (and unpickled) by skiff's SDK and, for Redis, "
      "by the bench itself, as a Python program that stores objects in Redis does. A Dict is a Redis hash (HSET/HGET), "
      "a Queue a Redis list (RPUSH/BLPOP, LPOP with a count); batches hold 100. skiff runs as it is by "
      "default (`--dq-fsync everysec`: a write is answered once committed, flushed at the next 100 ms tick) "
      "and with `--dq-fsync always` (answered once on disk); Redis as Debian configures it (no fsync) and "
      "with `appendfsync always` (each write flushed before its answer).")
    pin = one("dq.pin") or {}
    if pin.get("mode") == "split":
        w("")
        w(f"The client runs on CPU {pin['client'][0]} and every thread of each server (skiffd, both "
          f"redis-servers) on CPU {pin['server'][0]} (`BENCH_DQ_PIN=split`), so that each round trip "
          "crosses between two CPUs, as on a machine with a core to spare for each. Left to the kernel, "
          "a client and a server that happen to share a CPU hand over without waking an idle one, and "
          "that placement alone moves a round trip by 2x to 3x on this 2-CPU machine, differently for "
          "each system and round.")
    elif pin.get("mode") == "same":
        w("")
        w(f"The client and every thread of each server share CPU {pin['client'][0]} (`BENCH_DQ_PIN=same`).")
    w("")
    w("| operation | skiff ops/s | Redis ops/s | skiff / Redis | skiff (fsync always) ops/s "
      "| Redis (fsync always) ops/s | skiff / Redis (fsync always) |")
    w("|---|---|---|---|---|---|---|")
    names = [("dict_put", "Dict put (`d[k] = v` / HSET)"), ("dict_get", "Dict get (`d.get(k)` / HGET)"),
             ("dict_put_batch", "Dict update of 100 (per entry; HSET mapping)"),
             ("queue_put", "Queue put (`q.put(v)` / RPUSH)"), ("queue_get", "Queue get (`q.get()` / BLPOP)"),
             ("queue_put_batch", "Queue put_many of 100 (per item; RPUSH)"),
             ("queue_get_batch", "Queue get_many of 100 (per item; LPOP count)")]
    for key, label in names:
        s_, r_, f_ = one(f"dq.{key}.skiff"), one(f"dq.{key}.redis"), one(f"dq.{key}.redis_fsync")
        a_ = one(f"dq.{key}.skiff_always")
        if not s_:
            continue

        def cell(r):
            return f"{r['ops_per_s']:,.0f}" if r else "-"

        def ratio(mine, r):
            return f"{mine['ops_per_s'] / r['ops_per_s']:.2f}x" if mine and r and r.get("ops_per_s") else ""

        w(f"| {label} | {cell(s_)} | {cell(r_)} | {ratio(s_, r_)} | {cell(a_)} | {cell(f_)} | {ratio(a_, f_)} |")
    w("")
    w("Aim: single round trips within 2x of Redis (a ratio of 0.5x or more).")
    w("")
    return out


def render_pkg(R):
    """The "## The installed package" section (list of lines), or [] when
    part `pkg` gave no results (bench/bench_package.py)."""
    if not any(k.startswith("pkg.") for k in R):
        return []

    def one(key):
        v = R.get(key)
        return v[-1] if v else None

    out = []
    w = out.append
    w("## The installed package")
    w("")
    err = one("pkg.error")
    imp_s, imp_m, py = one("pkg.import.skiff"), one("pkg.import.modal"), one("pkg.import.python")
    n = len((imp_s or {}).get("samples", [])) or "?"
    w(f"Part `pkg` (bench/bench_package.py): medians of {n} runs each, /usr/bin/python3. Import times are a "
      "fresh interpreter's `import skiff` (and `import modal` through skiff's shim, with `modal.App` "
      "touched) minus its bare start"
      + (f" ({py['ms']:.1f} ms)" if py else "") + ". `skiff run hello.py` calls one function once on a warm "
      "daemon (host image), through the checkout's build and through /usr/bin/skiff of the .deb built "
      "from it (`make deb`), alternating.")
    w("")
    w("| what | value |")
    w("|---|---|")
    if imp_s:
        w(f"| `import skiff` | {imp_s['ms']:.1f} ms |")
    if imp_m:
        w(f"| `import modal` (the shim) | {imp_m['ms']:.1f} ms |")
    c, i, d = one("pkg.run.checkout"), one("pkg.run.installed"), one("pkg.deb")
    if c and i:
        w(f"| `skiff run hello.py`, checkout | {c['ms']:,.0f} ms |")
        w(f"| `skiff run hello.py`, installed package | {i['ms']:,.0f} ms ({i['ms'] / c['ms']:.2f}x) |")
    if d:
        w(f"| the .deb | {d['bytes'] / 1024:,.0f} KiB ({d['installed_kib']:,} KiB installed) |")
    if err:
        w("")
        w(f"Not measured: {err.get('reason')}")
    w("")
    return out


def render_sandbox(R):
    """The "## Sandboxes" section (list of lines), or [] when part `sandbox`
    gave no results (bench/bench_sandbox.py)."""
    if not any(k.startswith("sb.") for k in R):
        return []

    def one(key):
        v = R.get(key)
        return v[-1] if v else None

    run = one("sb.run") or {}
    anchors = run.get("anchors_ms") or {}
    aims = run.get("aims") or {}
    out = []
    w = out.append

    def cell(r, field="p50_ms"):
        if r is None:
            return "not measured"
        if "missing" in r or "error" in r:
            return r.get("missing") or f"failed: {r['error']}"
        return fmt_ms(r.get(field))

    def ratio(a, b, field="p50_ms"):
        if not a or not b or a.get(field) is None or b.get(field) in (None, 0):
            return ""
        return f"{a[field] / b[field]:.2f}x"

    w("## Sandboxes")
    w("")
    w(f"Part `sandbox` (bench/bench_sandbox.py), label `{run.get('label', '?')}`: skiff's Sandbox API against "
      "bwrap, `runc run` (rootfs a read-only bind of /) and `runsc --network=none do`, in the same run. "
      f"Published anchors for create to first command: Daytona {fmt_ms(anchors.get('daytona'))}, "
      f"E2B {fmt_ms(anchors.get('e2b'))}, Modal {fmt_ms(anchors.get('modal'))} "
      f"(p99 {fmt_ms(anchors.get('modal_p99'))}).")
    w("")
    sk = one("sb.create.skiff.serial") or one("sb.create.skiff")
    skc = one("sb.create.skiff.concurrent") or one("sb.create.skiff")
    w(f"### Create to the first output of `echo` ({run.get('n', '?')} one at a time; "
      f"{run.get('concurrency', '?')} at once)")
    w("")
    w("| system | p50 | p99 | p50 at once | p99 at once | skiff / it (p50) |")
    w("|---|---|---|---|---|---|")
    for name, key in (("skiff (warm pool)", "sb.create.skiff"), ("skiff, no pool", "sb.create.skiff_cold"),
                      ("skiff, gVisor", "sb.create.skiff_gvisor"),
                      ("bwrap", "sb.create.bwrap"), ("runc", "sb.create.runc"), ("runsc", "sb.create.runsc")):
        s1 = one(f"{key}.serial") or one(key)
        c1 = one(f"{key}.concurrent") or one(key)
        if s1 is None or "missing" in s1 or "error" in s1:
            w(f"| {name} | {cell(s1)} | | | | |")
            continue
        r = "" if key == "sb.create.skiff" else ratio(sk, s1)
        w(f"| {name} | {cell(s1)} | {cell(s1, 'p99_ms')} | {cell(c1)} | {cell(c1, 'p99_ms')} | {r} |")
    w("")
    w(f"skiff (warm pool) is a skiffd with `--sandbox-warm-pool {run.get('concurrency', '?')}`, given time to fill "
      "its pool after the first create and before the creates at once (a create takes a container started "
      "ahead); skiff, no pool is a skiffd with `--sandbox-warm-pool 0` (every create starts a container).")
    w("")
    if sk and sk.get("p50_ms") is not None:
        w("- " + aim(sk["p50_ms"] < aims.get("create_p50_ms", 30), f"aim p50 < {fmt_ms(aims.get('create_p50_ms'))}"))
        if skc and skc.get("p99_ms") is not None:
            w("- " + aim(skc["p99_ms"] < aims.get("create_p99_at_50_ms", 100),
                         f"aim p99 < {fmt_ms(aims.get('create_p99_at_50_ms'))} at {run.get('concurrency')} at once"))
        for n in ("daytona", "e2b", "modal"):
            if anchors.get(n):
                w(f"- {anchors[n] / sk['p50_ms']:.1f}x faster than {n.capitalize()}'s published "
                  f"{fmt_ms(anchors[n])}")
        w("")
    w(f"### Exec on a live sandbox ({run.get('exec_n', '?')} x `/bin/true`, each to its exit status)")
    w("")
    w("| system | p50 | p99 |")
    w("|---|---|---|")
    ex = one("sb.exec.skiff")
    for name, key in (("skiff", "sb.exec.skiff"), ("runc exec", "sb.exec.runc"), ("bwrap", "sb.exec.bwrap")):
        r = one(key)
        w(f"| {name} | {cell(r)} | {cell(r, 'p99_ms') if r and 'missing' not in r else ''} |")
    if ex and ex.get("p50_ms") is not None:
        w("")
        w("- " + aim(ex["p50_ms"] < aims.get("exec_ms", 5), f"aim exec < {fmt_ms(aims.get('exec_ms'))}"))
    w("")
    w(f"### Memory per idle sandbox ({run.get('idle_n', '?')} idle ones; MemAvailable delta)")
    w("")
    w("| system | MiB each (MemAvailable) | MiB each (cgroup) | fit in 24 GiB |")
    w("|---|---|---|---|")
    for name, key in (("skiff", "sb.idle.skiff"), ("skiff, 500 at once", "sb.idle.skiff_500"),
                      ("bwrap", "sb.idle.bwrap"), ("runc", "sb.idle.runc"), ("runsc", "sb.idle.runsc")):
        r = one(key)
        if r is None or "missing" in r or "error" in r:
            w(f"| {name} | {cell(r)} | | |")
            continue
        cg = r.get("cgroup_mib_each")
        w(f"| {name} | {r.get('mem_available_mib_each', 0):.2f} | {'' if cg is None else f'{cg:.2f}'} | "
          f"{r.get('fit_in_24gib') or ''} |")
    idle = one("sb.idle.skiff")
    if idle and idle.get("mem_available_mib_each") is not None:
        w("")
        w("- " + aim(idle["mem_available_mib_each"] < aims.get("idle_mib", 4) and
                     (idle.get("fit_in_24gib") or 0) >= aims.get("idle_count", 500),
                     f"aim >= {aims.get('idle_count', 500)} idle sandboxes under {aims.get('idle_mib', 4):g} MiB each"))
    w("")
    cold, warm = one("sb.fn.cold"), one("sb.fn.warm")
    base = one("sb.fn.cold_baseline")
    w("### A function, cold and warm (before/after the hardening: compare labels)")
    w("")
    w("| label | cold start p50 | warm call p50 | warm call p99 |")
    w("|---|---|---|---|")
    if base:
        bw = one("sb.fn.warm_baseline") or {}
        w(f"| {base.get('label', 'baseline')} | {cell(base)} | {cell(bw)} | {cell(bw, 'p99_ms')} |")
    w(f"| {(cold or {}).get('label', run.get('label', '?'))} | {cell(cold)} | {cell(warm)} | {cell(warm, 'p99_ms')} |")
    if base and cold and base.get("p50_ms") and cold.get("p50_ms") is not None:
        added = (cold["p50_ms"] / base["p50_ms"] - 1) * 100
        w("")
        w("- " + aim(added <= aims.get("cold_added_pct", 10),
                     f"aim <= {aims.get('cold_added_pct', 10):g} % added to cold start ({added:+.1f} %)"))
    w("")
    return out


def splice_images(out, section, heading="## Images", before=("## What each row measures",)):
    """Replaces (or adds, above the first of the headings `before`) the
    "## Images" section (or `heading`) of an existing report, keeping every
    other section as it was."""
    with open(out) as fh:
        old = fh.read().split("\n")
    start = next((i for i, l in enumerate(old) if l.strip() == heading), None)
    if start is None:
        at = next((i for i, l in enumerate(old) if l.strip() in before), len(old))
        new = old[:at] + section + old[at:]
    else:
        end = next((i for i in range(start + 1, len(old)) if old[i].startswith("## ")), len(old))
        new = old[:start] + section + old[end:]
    with open(out, "w") as fh:
        fh.write("\n".join(new))


def main():
    res_path, out, elapsed, build_dir = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    R = load(res_path)
    if R and all(k.startswith("img.") for k in R) and os.path.exists(out):
        splice_images(out, render_images(R))
        return
    if R and all(k.startswith("as.") for k in R) and os.path.exists(out):
        splice_images(out, render_autoscale(R), "## Autoscaler")
        return
    if R and all(k.startswith("sb.") for k in R) and os.path.exists(out):
        splice_images(out, render_sandbox(R), "## Sandboxes")
        return
    if R and all(k.startswith("web.") for k in R) and os.path.exists(out):
        splice_images(out, render_web(R), "## Web endpoints")
        return
    if R and all(k.startswith("dq.") for k in R) and os.path.exists(out):
        splice_images(out, render_dq(R), "## Dicts and Queues")
        return
    if R and all(k.startswith("vol.") for k in R) and os.path.exists(out):
        splice_images(out, render_vol(R), "## Volumes")
        return
    if R and all(k.startswith("pkg.") for k in R) and os.path.exists(out):
        splice_images(out, render_pkg(R), "## The installed package")
        return
    if R and all(k.startswith(HOT_PREFIXES) for k in R) and os.path.exists(out):
        # Rows of the other parts come from the last full run (bench/run merged them).
        merged = os.path.join(os.path.dirname(out), "results.jsonl")
        splice_images(out, render_hot(load(merged) if os.path.exists(merged) else R), "## Hot path",
                      ("## Images", "## Autoscaler", "## What each row measures"))
        return

    def one(key, field, default=None):
        v = R.get(key)
        return v[-1].get(field, default) if v else default

    rows = []  # (section, system, value text, ratio text)

    # 1. call round trip
    s = one("skiff.remote", "median_ms")
    if s is not None or "pool.remote" in R:
        def p99(key):
            v = one(key, "p99_ms")
            return f" (p99 {fmt_ms(v)})" if v is not None else ""

        rows.append(("1. call round trip, warm (median, lower is better)",
                     f"skiff `f.remote(1)`, warm container{p99('skiff.remote')}", fmt_ms(s), ""))
        p = one("pool.remote", "median_ms")
        rows.append(("", f"ProcessPoolExecutor(2) `submit(f, 1).result()`{p99('pool.remote')}", fmt_ms(p),
                     ratio_time(s, p)))
        if "dask.missing" in R:
            rows.append(("", "Dask LocalCluster(2)", "not installed", ""))
        else:
            d = one("dask.remote", "median_ms")
            rows.append(("", "Dask LocalCluster(2) `client.submit(f, 1).result()`", fmt_ms(d), ratio_time(s, d)))

    # 2. map throughput
    s = one("skiff.map", "tasks_per_s")
    if s is not None or "pool.map" in R:
        n = one("skiff.map", "n") or one("pool.map", "n")
        runs = R.get("skiff.map_run", [])
        note = ""
        if runs:
            note = (" (runs: " + ", ".join(f"{x['tasks_per_s']:,.0f}/s" for x in runs)
                    + "; containers after each: " + ", ".join(str(x.get("containers")) for x in runs) + ")")
        rows.append((f"2. map throughput, N={n} trivial tasks (best of runs, higher is better)",
                     f"skiff `sum(f.map(range(N)))`{note}", fmt_rate(s, "tasks/s"), ""))
        p = one("pool.map", "tasks_per_s")
        rows.append(("", "ProcessPoolExecutor(2) `map(f, range(N), chunksize=1)`", fmt_rate(p, "tasks/s"),
                     ratio_rate(s, p)))
        if "dask.missing" not in R:
            d = one("dask.map", "tasks_per_s")
            dn = one("dask.map", "n")
            rows.append(("", f"Dask LocalCluster(2) `gather(client.map(f, range({dn})))`",
                         fmt_rate(d, "tasks/s"), ratio_rate(s, d)))

    # 3. cold start
    s = one("skiff.cold", "median_ms")
    if s is not None or "start.host" in R:
        rows.append(("3. cold start (median, lower is better)",
                     "skiff `f.remote()` with no container (new app each time), to result", fmt_ms(s), ""))
        boot = one("skiff.cold_parts", "container_to_module_import_ms")
        if boot is not None:
            rows.append(("", "skiff: container record to user module imported in the container "
                         "(container start + interpreter + runner import)", fmt_ms(boot), ""))
        for key, name in (("start.host", "`python3 -c pass` on the host"),
                          ("start.host_runner", "`python3 -c 'import skiff._container'` on the host "
                           "(the runner's own imports, no container)"),
                          ("start.unshare", "`unshare -fpmniu --mount-proc python3 -c pass`"),
                          ("start.bwrap", "`bwrap` (ro-bind /, --dev, --proc, unshare pid/ipc/uts/net) `python3 -c pass`"),
                          ("start.runc", "`runc run` (bundle rootfs = read-only bind of /) `python3 -c pass`")):
            v = one(key, "median_ms")
            if v is not None:
                rows.append(("", name, fmt_ms(v), ratio_time(s, v)))
            elif key in R:
                rows.append(("", name, R[key][-1].get("missing") or R[key][-1].get("error", "failed"), ""))
        if "start.crun" in R:
            rows.append(("", "crun", "not measured: " + (one("start.crun", "missing") or one("start.crun", "note")), ""))

    # 4. durable input acknowledgment
    s = one("skiff.inputs_1client", "inputs_per_s")
    if s is not None:
        b = one("skiff.inputs_1client", "batch_median_ms")
        rows.append(("4. durable input acknowledgment, `POST /v1/calls/{id}/inputs` (higher is better)",
                     f"skiff, 1 client, batches of 100 (median {fmt_ms(b)} per batch)",
                     fmt_rate(s, "inputs/s"), ""))
        k = one("skiff.inputs_nclients", "clients")
        v = one("skiff.inputs_nclients", "inputs_per_s")
        rows.append(("", f"skiff, {k} clients at once, batches of 100 (queue emptied before)", fmt_rate(v, "inputs/s"), ""))
        v1 = one("skiff.inputs_batch1", "inputs_per_s")
        m1 = one("skiff.inputs_batch1", "median_ms")
        rows.append(("", f"skiff, 1 client, batches of 1 (mean {fmt_ms(m1)} per request; queue emptied before)",
                     fmt_rate(v1, "inputs/s"), ""))
        r = one("ref.sqlite_batch", "rows_per_s")
        rows.append(("", "reference: Python sqlite3, WAL + synchronous=FULL, same disk, 100 rows per commit",
                     fmt_rate(r, "rows/s"), ratio_rate(s, r)))
        r1 = one("ref.sqlite_1", "rows_per_s")
        rows.append(("", "reference: the same, 1 row per commit (the fsync floor)", fmt_rate(r1, "rows/s"),
                     ratio_rate(v1, r1)))

    commit = os.environ.get("SKIFF_BENCH_REV") or sh("git rev-parse --short HEAD")
    dirty = ""
    dask_v = one("dask.version", "version")
    lines = []
    w = lines.append
    w("# skiff benchmarks")
    w("")
    w("Produced by `bench/run` (run as root from the repository root); it builds a Release skiffd,")
    w("starts its own daemon with a temporary `SKIFF_HOME`, runs the skiff benchmarks and then the")
    w("peers in the same run, stops the daemon, removes the home and writes this file. Raw")
    w("numbers of the latest run are in `bench/results.jsonl`. The machine is noisy (10-30 % run")
    w("to run): compare numbers from one run only, never across runs.")
    w("")
    w(f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}; run took {elapsed} s")
    w(f"- machine: {machine()}")
    w(f"- skiff: commit {commit}{dirty}, `{os.path.relpath(build_dir, os.path.dirname(HERE))}` (CMAKE_BUILD_TYPE=Release)")
    w(f"- peers: Python's concurrent.futures; Dask distributed {dask_v or 'not installed'} (Debian python3-distributed); "
      f"{sh('runc --version | head -1') or 'runc missing'}; {sh('bwrap --version') or 'bwrap missing'}")
    env = {k: v for k, v in os.environ.items() if k.startswith("BENCH_") and k != "BENCH_ONLY"}
    w(f"- command: `sudo bench/run`{' with ' + ', '.join(f'{k}={v}' for k, v in sorted(env.items())) if env else ''}")
    w("")
    w("## Results")
    w("")
    w("| benchmark | system | median | ratio |")
    w("|---|---|---|---|")
    for sec, sysname, val, rat in rows:
        w(f"| {sec} | {sysname} | {val} | {rat} |")
    w("")

    if "skiff.raw_total" in R:
        w("### Where a warm `.remote()` spends its time")
        w("")
        w("The same call made by hand over the socket (keep-alive, arguments pickled beforehand):")
        w("")
        w("| step | median |")
        w("|---|---|")
        w(f"| `GET /v1/status` (HTTP floor: one request on the Unix socket) | {fmt_ms(one('skiff.http_status', 'median_ms'))} |")
        w(f"| `POST /v1/functions/{{id}}/calls` with the input (answered once the input is on disk) | {fmt_ms(one('skiff.raw_post_call', 'median_ms'))} |")
        w(f"| `GET /v1/calls/{{id}}/outputs?wait=30` until the output is there (lease, run, output back, commit, wake) | {fmt_ms(one('skiff.raw_wait_output', 'median_ms'))} |")
        w(f"| total by hand | {fmt_ms(one('skiff.raw_total', 'median_ms'))} |")
        w(f"| `f.remote(1)` through the SDK, for comparison | {fmt_ms(one('skiff.remote', 'median_ms'))} |")
        sp = R.get("skiff.remote_split")
        if sp:
            sp = sp[-1]
            w(f"| SDK `.remote()`: call to the function running in the container (time stamp taken inside) | {fmt_ms(sp['call_to_run_ms'])} (min {fmt_ms(sp['call_to_run_min_ms'])}) |")
            w(f"| SDK `.remote()`: function ran to the result in the caller | {fmt_ms(sp['run_to_result_ms'])} (min {fmt_ms(sp['run_to_result_min_ms'])}) |")
        w("")
        w("The by-hand total waits for the POST's answer before it polls; the SDK does the same, so")
        w("the two totals should agree. The in-container split uses a second function that returns")
        w("its own `time.time()`.")
        w("")
    if "skiff.cold_parts" in R:
        p = R["skiff.cold_parts"][-1]
        w("### Where a cold start spends its time (medians of the parts; wall clocks of host and container)")
        w("")
        w("| step | median |")
        w("|---|---|")
        w(f"| (not in the cold start) `app.run()`: register the app, upload unchanged sources | {fmt_ms(p['app_create_ms'])} |")
        w(f"| `.remote()` to the container's record (`started_at` of `GET /v1/containers`) | {fmt_ms(p['to_container_record_ms'])} |")
        w(f"| container record to the user module imported inside (clone, overlay, cgroups, exec skiff-init, python3, `skiff._container` imports) | {fmt_ms(p['container_to_module_import_ms'])} |")
        w(f"| module imported to the function running (first exchange, lease) | {fmt_ms(p['import_to_run_ms'])} |")
        w(f"| function ran to the result in the caller (output exchange, commit, wake, long-poll answer) | {fmt_ms(p['run_to_result_ms'])} |")
        w("")

    obs = []
    post, st = one("skiff.raw_post_call", "median_ms"), one("skiff.http_status", "median_ms")
    if post and st and post > 20 * st:
        obs.append(f"A request answered at once (`GET /v1/status`) takes {fmt_ms(st)}; one whose answer waits "
                   f"for the store commit (`POST .../calls`) takes {fmt_ms(post)}, though a SQLite commit of "
                   f"one row takes {fmt_ms(one('ref.sqlite_1', 'median_ms'))} on this disk: the wait is "
                   "not the disk. The same quantum shows in the warm round trip, the cold start and the "
                   "acknowledgment rate of a single client (one batch per wait).")
    f1, l1 = one("skiff.inputs_1client", "batch_first_tenth_ms"), one("skiff.inputs_1client", "batch_last_tenth_ms")
    if f1 and l1 and l1 > 1.5 * f1:
        obs.append(f"Acknowledging a batch of 100 gets slower as the queue grows: {fmt_ms(f1)} for the first tenth "
                   f"of the batches, {fmt_ms(l1)} for the last (then about "
                   f"{one('skiff.inputs_1client', 'n'):,} inputs are queued); the SQLite reference stays flat. "
                   "Per-request work proportional to the number of queued inputs.")
    hr, h = one("start.host_runner", "median_ms"), one("start.host", "median_ms")
    boot = one("skiff.cold_parts", "container_to_module_import_ms")
    if hr and h and boot:
        obs.append(f"Of the {fmt_ms(boot)} from a container's record to the user module being imported, "
                   f"about {fmt_ms(hr)} is what the same interpreter needs on the host to start and import "
                   f"`skiff._container` ({fmt_ms(hr - h)} more than `python3 -c pass`): the runner's own "
                   "imports, more than the container set-up itself.")
    if obs:
        w("## Observations from this run")
        w("")
        for o in obs:
            w(f"- {o}")
        w("")
    lines += render_hot(R)
    lines += render_images(R)
    lines += render_autoscale(R)
    lines += render_sandbox(R)
    lines += render_web(R)
    lines += render_dq(R)
    lines += render_vol(R)
    lines += render_pkg(R)
    w("## What each row measures")
    w("")
    w("1. **Call round trip**: one trivial call (`x + 1`), caller blocked until the result, after")
    w("   20 warm-up calls; the median of `BENCH_RT_CALLS` (200) calls. skiff: a warm container of")
    w("   an ephemeral app (`app.run()`), the SDK over the Unix socket; the input is durable (SQLite")
    w("   WAL, synchronous=FULL) before it runs. Peers: a ProcessPoolExecutor with 2 processes and")
    w("   a Dask LocalCluster of 2 worker processes with one thread each, both already started.")
    w("2. **Map throughput**: `sum(f.map(range(N)))` for a trivial `f`, N = `BENCH_MAP_N` (2000),")
    w("   tasks per second from the call to the last result, best of `BENCH_MAP_REPEAT` (2) runs;")
    w("   skiff scales containers up on its own (their count is shown), the peers have 2 processes.")
    w("3. **Cold start**: skiff: a new ephemeral app each time (so no container is warm), then the")
    w("   time of the first `.remote()` to its result; median of `BENCH_COLD_N` (10). The parts come")
    w("   from the container's `started_at` and wall-clock times taken inside the container (when")
    w("   the user module was imported and when the function ran). Peers: the wall time of")
    w("   `python3 -c pass` (the same /usr/bin/python3 the containers run) started from Python's")
    w("   subprocess, on the host and under each sandbox, each with the host's root read-only;")
    w("   median of `BENCH_START_N` (20) after 2 warm-ups. A skiff cold start does more than these")
    w("   (it imports the runner and the user's module and makes two HTTP exchanges), so the ratio")
    w("   is an upper bound of the sandbox overhead.")
    w("4. **Durable input acknowledgment**: inputs per second that `POST /v1/calls/{id}/inputs`")
    w("   accepts, in batches of `BENCH_INPUTS_BATCH` (100) from one connection, then from")
    w("   `BENCH_INPUTS_CLIENTS` (4) connections at once (each its own call), then one input per")
    w("   request; the queue is emptied (call cancelled) between these three. Each answer comes after the inputs are committed. The function (`max_containers=1`)")
    w("   sleeps, so one container holds a few inputs and the rest stay queued. Reference rows: the")
    w("   same rows inserted by Python's sqlite3 with skiffd's settings, on the same file system.")
    w("")
    w("Run a part alone with `BENCH_ONLY=rt,map,cold,inputs,calls,mapscale,retention,start,images,autoscale`")
    w("(comma list; `images` or `autoscale` alone rewrites only its own section, and any of `calls`,")
    w("`mapscale` and `retention` only the Hot path); sizes: see the header of `bench/run`.")
    w("")
    with open(out, "w") as fh:
        fh.write("\n".join(lines))


if __name__ == "__main__":
    main()
