#!/usr/bin/env python3
"""A mutation pass over the code that guards metronome against hostile input
and keeps its ledger's states: the SSRF guard, the Retry-After and HTTP-date
parser, the scalar and CSV parsers, environment interpolation, and the SQL
that moves jobs and deliveries between states. Each mutant (a comparison,
boolean or arithmetic operator flipped, a constant moved by one, a state
number changed in SQL) is built into build-mutate/ and the tests that guard
that file are run; a mutant they do not kill is a survivor, printed with its
place. Usage: python3 scripts/mutate.py [--only FILE_SUBSTRING] [--list] [--from LOG]
(--from: only the mutants a previous run's LOG lists as survivors).
Needs a configured tree: it runs cmake itself. Takes tens of minutes."""
import os, re, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build-mutate")

# file -> (functions to mutate (None: all), SQL line filter or None, make
# targets rebuilt for each mutant (/fast: without their dependencies), tests,
# the file to touch so a /fast build sees a header changed)
TARGETS = {
    "sdk/include/metronome/netguard.h": (
        ["mtr_ipv4_private", "mtr_netguard_v4", "mtr_netguard_in", "mtr_ipv6_private"], None,
        ["test_netguard/fast"], ["tests/test_netguard"], "tests/unit/test_netguard.c"),
    "sdk/include/metronome/util.h": (
        ["mtr_util_month", "mtr_util_digits", "mtr_util_clock", "mtr_util_date",
         "mtr_parse_http_date", "mtr_parse_retry_after", "mtr_json_escape"], None,
        ["test_sdk_util/fast"], ["tests/test_sdk_util"], "tests/unit/test_sdk_util.c"),
    "core/scalar.c": (["read_digits", "parse_int64", "parse_duration_ms", "parse_size",
                       "fixed_digits", "parse_date", "parse_clock", "parse_iso8601"], None,
                      ["metronome_core/fast", "test_scalar/fast"], ["tests/test_scalar"], None),
    "core/csv.c": (None, None, ["metronome_core/fast", "test_csv/fast"], ["tests/test_csv"],
                   None),
    "core/interp.c": (None, None, ["metronome_core/fast", "test_interp/fast"],
                      ["tests/test_interp"], None),
    "plugins/store_sqlite/sqlite.c": (
        None,
        r"\[S_(CLAIM|LEASE|JOB_|JOBS_MISS|DELIVERY_UPDATE|FAIL_PENDING|REPLAY|NEXT_)|state = [0-9]|kind = [0-9]",
        ["store_sqlite/fast"],
        ["tests/test_store_sqlite", "tests/test_delivery --jobs 2", "tests/test_ledger --jobs 2",
         "tests/test_hardening --jobs 2"], None),
}

SWAPS = [("<=", "<"), (">=", ">"), ("==", "!="), ("!=", "=="), ("&&", "||"), ("||", "&&"),
         (" < ", " <= "), (" > ", " >= "), (" + 1", " - 1"), (" - 1", " + 1")]


def function_lines(lines, functions):
    """The line numbers inside the bodies of the named functions."""
    keep = set()
    for i, line in enumerate(lines):
        m = re.match(r"^(static )?(inline )?[\w\s\*]+?\b(\w+)\(", line)
        if m and m.group(3) in functions and not line.rstrip().endswith(";"):
            k = i + 1
            while k < len(lines) and lines[k] != "}":
                keep.add(k)
                k += 1
    return keep


def mutants_of(path, functions, line_filter):
    lines = open(os.path.join(ROOT, path)).read().split("\n")
    inside = function_lines(lines, functions) if functions else None
    out = []
    in_comment = False
    for i, line in enumerate(lines):
        if inside is not None and i not in inside:
            continue
        code = line.strip()
        if code.startswith("/*"):
            in_comment = "*/" not in code
            continue
        if in_comment:
            in_comment = "*/" not in code
            continue
        if not code or code.startswith(("#", "*", "//")) or "static_assert" in code.lower():
            continue
        if line_filter and not re.search(line_filter, line):
            continue
        cut = line.find("/*")
        if cut > 0 and line[:cut].count('"') % 2 == 0:
            line = line[:cut]  # a trailing comment is not code
        if line_filter:  # SQL: change state and kind numbers
            for m in re.finditer(r"(state|kind) = ([0-9])", line):
                new = "%s = %d" % (m.group(1), (int(m.group(2)) + 1) % 4)
                out.append((i, line[:m.start()] + new + line[m.end():]))
            continue
        for a, b in SWAPS:
            start = 0
            while True:
                k = line.find(a, start)
                if k < 0:
                    break
                if not (a in ("<", ">") and line[k:k + 2] in ("<=", ">=", "<<", ">>")):
                    out.append((i, line[:k] + b + line[k + len(a):]))
                start = k + len(a)
        for m in re.finditer(r"(?<![\w.x])([0-9]+)(?![\w.])", line):
            if '"' in line[:m.start()] and line[:m.start()].count('"') % 2 == 1:
                continue  # inside a string
            v = int(m.group(1))
            out.append((i, line[:m.start()] + str(v + 1) + line[m.end():]))
    return lines, out


def run(cmd, cwd, timeout=600):
    try:
        return subprocess.run(cmd, shell=True, cwd=cwd, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        return 124


def main():
    os.environ.update({  # as scripts/test.sh --sanitize runs the tests
        "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:strict_string_checks=1",
        "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
        "LSAN_OPTIONS": "suppressions=%s/tests/lsan.supp:print_suppressions=0" % ROOT,
        "METRONOME_PLUGIN_PATH": "", "METRONOME_CONFIG": ""})
    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
    again = None
    if "--from" in sys.argv:
        again = set(l.strip()[len("SURVIVED "):] for l in open(sys.argv[sys.argv.index("--from") + 1])
                    if l.startswith("SURVIVED "))
    # built with ASan and UBSan, so a mutant that reads or writes out of bounds dies too
    if run("cmake -S %s -B %s -DMETRONOME_TESTS=ON -DCMAKE_BUILD_TYPE=Debug "
           "-DMETRONOME_SANITIZE=ON" % (ROOT, BUILD), ROOT) != 0:
        sys.exit("cmake failed")
    killed = survived = 0
    for path, (functions, line_filter, targets, tests, touch) in TARGETS.items():
        if only and only not in path:
            continue
        lines, mutants = mutants_of(path, functions, line_filter)
        if again is not None:
            mutants = [(i, m) for i, m in mutants if "%s:%d: %s" % (path, i + 1, m.strip()) in again]
            if not mutants:
                continue
        if "--list" in sys.argv:
            for i, m in mutants:
                print("%s:%d: %s" % (path, i + 1, m.strip()))
            continue
        build = "cmake --build %s -j2 --target %s" % (BUILD, " ".join(targets))
        whole = "cmake --build %s -j2" % BUILD
        if run(whole, ROOT) != 0 or any(run(t, BUILD) != 0 for t in tests):
            sys.exit("the unmutated tree does not pass the tests of %s" % path)
        full = os.path.join(ROOT, path)
        original = "\n".join(lines)
        try:
            for i, mutated in mutants:
                text = lines[:i] + [mutated] + lines[i + 1:]
                open(full, "w").write("\n".join(text))
                if touch:
                    os.utime(os.path.join(ROOT, touch))
                if run(build, ROOT) != 0:
                    continue  # does not compile: not a mutant
                if any(run(t, BUILD, 120) != 0 for t in tests):
                    killed += 1
                else:
                    survived += 1
                    print("SURVIVED %s:%d: %s" % (path, i + 1, mutated.strip()), flush=True)
        finally:
            open(full, "w").write(original)
            if touch:
                os.utime(os.path.join(ROOT, touch))
        run(whole, ROOT)
    print("%d killed, %d survived" % (killed, survived))


main()
