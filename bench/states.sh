# bench/states.sh, sourced by the bench scripts: remove_states DIR removes
# the state files nsnet keeps in /run/nsnet/state for the state roots under
# DIR (each names its root in its file "root"), once DIR is gone.
remove_states() {
	local f
	for f in /run/nsnet/state/*/root; do
		[ -e "$f" ] || continue
		case "$(cat "$f")" in "$1"/*) rm -rf "$(dirname "$f")" ;; esac
	done
}
