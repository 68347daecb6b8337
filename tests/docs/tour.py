#!/usr/bin/env python3
"""Runs the README's tour as written: the console block between
<!-- tour:begin --> and <!-- tour:end -->, in a fresh directory whose build/
and configs/ are the build under test and the repository's. Each `$ ` line is
run by sh; the lines after it are its expected output (stdout and stderr),
where `...` inside a line matches any text and a line of only `...` matches
any number of lines. A command exits 0 unless its line says
`# exit status N`. A command ending in `&` runs in the background until the
tour ends; the tour waits for it to print `listening`. The receiver's fixed
port (8845) and the admin API's (8844) are replaced by free ones, in commands
and expected output alike. examples/ is there too, for the SDK client."""
import os, re, shutil, socket, subprocess, sys, tempfile, time


def tour_block(readme):
    text = open(readme).read()
    m = re.search(r"<!-- tour:begin -->\n```console\n(.*?)```\n<!-- tour:end -->", text, re.S)
    if not m:
        sys.exit("FAIL: README has no tour block")
    steps, cur = [], None
    for line in m.group(1).splitlines():
        if line.startswith("$ "):
            cur = {"cmd": line[2:], "out": []}
            steps.append(cur)
        elif cur is not None:
            cur["out"].append(line)
    return steps


def matches(expected, actual):
    """Whole-output match with ... wildcards."""
    def line_ok(e, a):
        parts = [re.escape(p) for p in e.split("...")]
        return re.fullmatch(".*".join(parts), a) is not None

    def go(i, j):
        if i == len(expected):
            return j == len(actual)
        if expected[i] == "...":
            return any(go(i + 1, k) for k in range(j, len(actual) + 1))
        return j < len(actual) and line_ok(expected[i], actual[j]) and go(i + 1, j + 1)

    return go(0, 0)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    build, src = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    steps = tour_block(os.path.join(src, "README.md"))
    work = tempfile.mkdtemp(prefix="metronome-tour-")
    os.symlink(build, os.path.join(work, "build"))
    os.symlink(os.path.join(src, "configs"), os.path.join(work, "configs"))
    os.symlink(os.path.join(src, "examples"), os.path.join(work, "examples"))
    port, admin = str(free_port()), str(free_port())
    env = {k: v for k, v in os.environ.items() if not k.startswith("METRONOME_")}
    env["TOUR_PORT"] = port
    env["TOUR_ADMIN_PORT"] = admin
    ports = lambda text: text.replace("8845", port).replace("8844", admin)
    background, failures = [], 0
    try:
        for n, step in enumerate(steps, 1):
            cmd = ports(step["cmd"])
            want = [ports(l) for l in step["out"]]
            status = 0
            m = re.search(r"\s+# exit status (\d+)$", cmd)
            if m:
                status, cmd = int(m.group(1)), cmd[: m.start()]
            if cmd.startswith("export "):
                name, _, value = cmd[7:].partition("=")
                env[name] = value
                continue
            if cmd.endswith("&"):
                log = open(os.path.join(work, "background-%d.out" % n), "w+")
                p = subprocess.Popen(cmd[:-1], shell=True, cwd=work, env=env, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
                background.append(p)
                for _ in range(200):  # polled for readiness, at most 10 s
                    log.seek(0)
                    if "listening" in log.read() or p.poll() is not None:
                        break
                    time.sleep(0.05)
                continue
            r = subprocess.run(cmd, shell=True, cwd=work, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=120, text=True)
            got = r.stdout.splitlines()
            if r.returncode != status or not matches(want, got):
                failures += 1
                print("FAIL: step %d: $ %s\n  exit %d (want %d)\n  got:\n%s\n  want:\n%s" % (
                    n, cmd, r.returncode, status, "\n".join("    " + l for l in got),
                    "\n".join("    " + l for l in want)))
    finally:
        for p in background:
            os.killpg(p.pid, 15)
            p.wait()
        shutil.rmtree(work, ignore_errors=True)
    print("%d passed, %d failed" % (len(steps) - failures, failures))
    sys.exit(1 if failures else 0)


main()
