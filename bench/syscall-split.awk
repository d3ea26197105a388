# bench/syscall-split.awk - where each thread of a process spends its CPU samples, by system call.
#
# Input: `perf script -F comm,tid,ip,sym` of a `perf record -g` profile. Kernel call chains are exact
# (frame pointers); user-space ones are not (respoold and libc are built without frame pointers), so a
# sample is put in the bucket of the system call it was taken in, named after the libc wrapper that
# entered the kernel (e.g. "send", "pwritev64v2", "fdatasync"), or "kernel: irq/scheduler" for kernel
# samples outside any system call, or "user space".
# Output: one line per thread, busiest first: share of all samples, name, tid, top buckets.
function flush(   cat) {
    if (tid == "") return
    cat = sys != "" ? sys : (kern ? "kernel: irq/scheduler" : "user space")
    n[tid]++; c[tid, cat]++; total++
    if (!((tid, cat) in seen)) { seen[tid, cat] = 1; cats[tid] = cats[tid] "\t" cat }
    tid = ""
}
/^\t/ {
    if ($1 ~ /^ffffffff/) {
        kern = 1
        if ($2 ~ /^entry_SYSCALL/) after_entry = 1
    } else if (after_entry && sys == "") {
        sys = $2; sub(/^_+/, "", sys); sub(/^GI_+/, "", sys); sub(/^libc_/, "", sys)
        after_entry = 0
    }
    next
}
/^$/ { flush(); next }
{
    flush()
    tid = $NF; comm = $0; sub(/[ \t]+[0-9]+[ \t]*$/, "", comm); sub(/^[ \t]+/, "", comm); name[tid] = comm
    sys = ""; kern = 0; after_entry = 0
}
END {
    flush()
    for (t in n) order[++k] = t
    for (i = 2; i <= k; i++) for (j = i; j > 1 && n[order[j]] > n[order[j-1]]; j--) { x = order[j]; order[j] = order[j-1]; order[j-1] = x }
    for (i = 1; i <= k && i <= 8; i++) {
        t = order[i]
        m = split(substr(cats[t], 2), cl, "\t")
        for (a = 2; a <= m; a++) for (b = a; b > 1 && c[t, cl[b]] > c[t, cl[b-1]]; b--) { x = cl[b]; cl[b] = cl[b-1]; cl[b-1] = x }
        line = sprintf("%5.1f%%  %-9s %-7s:", 100 * n[t] / total, name[t], t)
        for (a = 1; a <= m && a <= 6; a++) line = line sprintf("  %s %.0f%%", cl[a], 100 * c[t, cl[a]] / n[t])
        print line
    }
}
