# Sourced by the benchmark scripts, from the repository root with BENCH set:
# - sets `rev` to the commit being measured and refuses a tree with uncommitted changes (figures
#   must describe committed code) unless ALLOW_DIRTY=1; the revision is taken before anything is
#   written, since an output file would make the tree dirty;
# - builds the release binary (`bin`) and installs the harness's tools;
# - makes a scratch directory (`work`), which the caller removes (its own trap).
rev=$(git describe --always --dirty 2>/dev/null || echo unknown)
case "$rev" in
    *-dirty) if [ "${ALLOW_DIRTY:-0}" != 1 ]; then
        echo "$(basename "$0"): the tree has uncommitted changes ($rev); commit first (ALLOW_DIRTY=1 to measure anyway)" >&2
        exit 1
    fi ;;
esac
cargo build --release --locked
bash "$BENCH/setup.sh" >/dev/null
bin="$PWD/target/release/pixelguard"
work=$(mktemp -d)
