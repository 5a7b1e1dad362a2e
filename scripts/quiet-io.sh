# Sourced by the benchmark scripts: quiet_io waits (up to 60 s) until the
# disk is quiet, the kernel's share of I/O pressure over the last 10 s
# under 0.5 % (/proc/pressure/io), so that write-back from earlier runs
# does not land in the next run's figures. Calls `say` if it gives up.
quiet_io() {
    local i p
    for i in $(seq 120); do
        p=$(awk '/^some/ { sub("avg10=", "", $2); print $2 }' /proc/pressure/io 2>/dev/null || echo 0)
        awk -v p="${p:-0}" 'BEGIN { exit !(p < 0.5) }' && [ "$i" -gt 4 ] && return
        sleep 0.5
    done
    say "the disk is still busy; timing anyway"
}
