#!/usr/bin/env bash
# Centaurus setup: installs every system package the project needs (idempotently),
# builds a virtualenv in .venv with the package, prepares kernel headers for bcc,
# the busybox container image and the tiny VM image. Then runs the requested job:
#
#   ./setup.sh demo    set up, start a local cluster on the embedded store, run a demo workload
#   ./setup.sh test    set up, run the whole test suite (what .ci/run calls)
#   ./setup.sh         set up only
set -euo pipefail
cd "$(dirname "$0")"
ROOT="$(pwd)"
VENV="$ROOT/.venv"
STAMP_DIR="$ROOT/.setup"
mkdir -p "$STAMP_DIR"
log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }

APT_PACKAGES=(
  python3 python3-venv python3-dev python3-bpfcc libbpfcc libbpfcc-dev bpfcc-tools
  etcd-server etcd-client runc busybox-static
  iproute2 iputils-ping ethtool bridge-utils iperf3 tcpdump tshark procps psmisc util-linux
  libvirt-daemon-system libvirt-daemon libvirt-clients libvirt-dev pkg-config qemu-system-x86 qemu-utils
  linux-image-cloud-amd64 linux-headers-cloud-amd64 cpio gzip xz-utils genisoimage
  clang llvm gcc make ca-certificates fish
)

need_apt=0
for p in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then need_apt=1; break; fi
done
if [ "$need_apt" = 1 ]; then
  if [ "$(id -u)" != 0 ]; then echo "setup: system packages missing and not root; run as root" >&2; exit 1; fi
  log "installing system packages (apt)"
  export DEBIAN_FRONTEND=noninteractive
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections || true
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${APT_PACKAGES[@]}"
fi

# Kernel headers for bcc: the running kernel may have no headers package; point build/source at Debian's cloud headers.
KREL="$(uname -r)"
MODDIR="/lib/modules/$KREL"
if [ "$(id -u)" = 0 ] && { [ ! -e "$MODDIR/build/include" ] || [ ! -e "$MODDIR/source" ]; }; then
  HDR="$(ls -d /usr/src/linux-headers-*-cloud-amd64 2>/dev/null | sort -V | tail -1 || true)"
  if [ -n "$HDR" ]; then
    COMMON="${HDR%-cloud-amd64}-common"
    mkdir -p "$MODDIR"
    ln -sfn "$HDR" "$MODDIR/build"
    ln -sfn "$COMMON" "$MODDIR/source"
    log "kernel headers: $MODDIR/build -> $HDR"
  fi
fi

# Python virtualenv on Debian's python3 (so python3-bpfcc is importable), with the package installed editable.
if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtualenv $VENV"
  /usr/bin/python3 -m venv --system-site-packages "$VENV"
fi
REQ_HASH="$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$STAMP_DIR/pip-$REQ_HASH" ]; then
  log "installing python packages"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -e ".[dev]"
  rm -f "$STAMP_DIR"/pip-*; touch "$STAMP_DIR/pip-$REQ_HASH"
fi

# BPF filesystem for pinned maps.
if [ "$(id -u)" = 0 ] && ! mountpoint -q /sys/fs/bpf 2>/dev/null; then
  mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true
fi

# Images: busybox container image and tiny VM image (built by the project's own tooling, idempotent).
if [ -x "$VENV/bin/centaurusctl" ]; then
  "$VENV/bin/centaurusctl" image build-defaults >/dev/null 2>&1 || log "warning: default images not built (see 'centaurusctl image build-defaults')"
fi

export PATH="$VENV/bin:$PATH"
case "${1:-}" in
  demo)
    shift || true
    exec "$VENV/bin/centaurusctl" init --demo "$@" ;;
  test)
    shift || true
    # Every check runs even if an earlier one failed, so one CI run reports everything.
    status=0
    log "ruff check"; "$VENV/bin/ruff" check ctl agent tests benchmarks || status=1
    log "ruff format --check"; "$VENV/bin/ruff" format --check ctl agent tests benchmarks || status=1
    log "mypy ctl agent"; "$VENV/bin/mypy" ctl agent || status=1
    log "import contracts (.importlinter)"; "$VENV/bin/lint-imports" || status=1
    log "pytest"
    # pytest exits 5 when it collected no tests: that is a failure for CI too.
    "$VENV/bin/python" -m pytest -q -p no:cacheprovider --durations=25 "$@" || status=1
    exit $status ;;
  "") log "setup complete; activate with: source $VENV/bin/activate" ;;
  *) echo "usage: $0 [demo|test [pytest args]]" >&2; exit 1 ;;
esac
