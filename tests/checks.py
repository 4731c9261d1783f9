"""tests/checks.py — the Python tests' result lines and verdict, once (what
tests/lib.sh is to the shell tests; four tests each defined their own).

    from checks import Checks
    T = Checks("inception_test")
    T.check(ok, "what was checked", detail="shown only when it failed")
    sys.exit(T.done())

check prints "NAME: PASS WHAT" or "NAME: FAIL WHAT" (flushed, so that the
lines interleave rightly with the output of the programs a test runs) and
counts it; done prints "NAME: P passed, F failed" and returns the test's
exit status, 0 when nothing failed. The scripts are run from tests/, so
Python finds this module beside them.
"""


class Checks:
    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failures = []

    def check(self, ok, what, detail=""):
        print(f"{self.name}: {'PASS' if ok else 'FAIL'} {what}" + (f"\n{detail}" if detail and not ok else ""),
              flush=True)
        if ok:
            self.passed += 1
        else:
            self.failures.append(what)
        return ok

    def done(self):
        print(f"{self.name}: {self.passed} passed, {len(self.failures)} failed", flush=True)
        return 1 if self.failures else 0
