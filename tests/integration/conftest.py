# SPDX-License-Identifier: GPL-2.0-or-later
"""pytest fixtures for moat's integration tests (helpers live in moatlib)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import moatlib  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


@pytest.fixture(scope="session", autouse=True)
def moat_built():
    """The binaries must exist; being root is what the sandbox needs."""
    if os.geteuid() != 0:
        pytest.skip("integration tests run moatd as in production: need root")
    missing = [p for p in (moatlib.MOATD, moatlib.MOATCTL, moatlib.KEYD)
               if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail("not built (MOAT_BUILD=%r): %s"
                    % (moatlib.BUILD, ", ".join(missing)))
    if not os.path.isdir(moatlib.CHROOT):
        pytest.fail("%s is missing: run packaging/dev/setup" % moatlib.CHROOT)


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    """{"ecdsa": (cert, key), "rsa": (cert, key)} made once per session."""
    d = tmp_path_factory.mktemp("certs")
    return {k: moatlib.make_cert(str(d), k) for k in ("ecdsa", "rsa")}


class MoatFactory:
    """Makes Moat instances; stops every one at teardown and checks exit 0."""

    def __init__(self, tmp_path_factory):
        self.tmp = tmp_path_factory
        self.moats = []

    def __call__(self, frontends, start=True, **opts):
        m = moatlib.Moat(self.tmp.mktemp("moat"), frontends, **opts)
        self.moats.append(m)
        if start:
            m.start()
        return m

    def close(self):
        errors = []
        for m in self.moats:
            if m.proc is None:
                continue
            try:
                rc = m.stop()
            except AssertionError as e:
                errors.append(str(e))
                continue
            if rc != 0:
                errors.append("moatd exited with %s after SIGTERM\n%s"
                              % (rc, m.log()))
        self.moats = []
        if errors:
            pytest.fail("\n".join(errors))


@pytest.fixture
def moat_factory(tmp_path_factory):
    f = MoatFactory(tmp_path_factory)
    yield f
    f.close()


@pytest.fixture(scope="module")
def module_moat_factory(tmp_path_factory):
    f = MoatFactory(tmp_path_factory)
    yield f
    f.close()


@pytest.fixture(scope="module")
def backends():
    """Backends shared by a module, closed at its end."""
    made = []

    class B:
        def echo(self, unix_path=None):
            b = moatlib.echo_backend(unix_path)
            made.append(b)
            return b

        def http(self):
            b = moatlib.http_backend()
            made.append(b)
            return b

        def stall(self):
            b = moatlib.stall_backend()
            made.append(b)
            return b

        def custom(self, handler, unix_path=None):
            b = moatlib.Backend(handler, unix_path)
            made.append(b)
            return b

        refusing = staticmethod(moatlib.refusing_backend)

    yield B()
    for b in made:
        b.close()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, attach the log of every moatd the test ran."""
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call" and rep.failed:
        for name in ("moat_factory", "module_moat_factory"):
            f = item.funcargs.get(name) if hasattr(item, "funcargs") else None
            if f is None:
                continue
            for m in f.moats:
                rep.sections.append(("moatd log " + m.dir, m.log()))
