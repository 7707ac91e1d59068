# Sourced by the set-up scripts: the project's Python virtual environment.
#
#   VENV            ${ICM_VENV:-$HOME/.cache/icm-venv}
#   ensure_venv     creates it when missing. Needs python3 >= 3.9 with its venv module; on
#                   Debian/Ubuntu that is the package python3-venv, which is installed with
#                   apt-get when running as root (or with a password-less sudo), and
#                   otherwise named in the error.
#   venv_install    pip install into it (arguments as for pip install), quietly.
VENV=${ICM_VENV:-$HOME/.cache/icm-venv}

ensure_venv() {
    [ -x "$VENV/bin/python" ] && return 0
    if ! command -v python3 >/dev/null 2>&1; then
        echo "icm set-up: python3 not found. Install Python >= 3.9 (Debian/Ubuntu: apt-get install python3 python3-venv)" >&2
        return 1
    fi
    if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 9))'; then
        echo "icm set-up: $(python3 --version 2>&1) is too old: Python >= 3.9 is needed" >&2
        return 1
    fi
    if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
        local pkg
        pkg="python3-venv"
        if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = 0 ] || sudo -n true 2>/dev/null; }; then
            echo "icm set-up: installing $pkg with apt-get (python3 has no venv module)" >&2
            local sudo=""
            [ "$(id -u)" = 0 ] || sudo="sudo -n"
            $sudo apt-get update -qq >&2 && $sudo apt-get install -y -qq "$pkg" >&2 || {
                echo "icm set-up: apt-get install $pkg failed" >&2
                return 1
            }
        else
            echo "icm set-up: python3 has no venv module: install $pkg (Debian/Ubuntu) or your system's equivalent" >&2
            return 1
        fi
    fi
    echo "icm set-up: creating the project venv $VENV" >&2
    python3 -m venv "$VENV"
}

venv_install() {
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q "$@" >&2
}
