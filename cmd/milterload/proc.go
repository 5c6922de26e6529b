package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// procSnapshot is what /proc tells about the milter process at one time.
type procSnapshot struct {
	ticks  uint64 // utime + stime, in clock ticks
	rssKB  uint64 // VmRSS
	peakKB uint64 // VmHWM
}

// readProc reads /proc/PID/stat (utime and stime, fields 14 and 15,
// proc(5)) and /proc/PID/status (VmRSS, VmHWM).
func readProc(pid int) (procSnapshot, error) {
	var s procSnapshot
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// count fields after the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return s, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state): utime is field 14, stime 15.
	if len(f) < 13 {
		return s, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return s, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	s.ticks = ut + st
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			s.rssKB = n
		case "VmHWM":
			s.peakKB = n
		}
	}
	return s, nil
}

// readProcs sums readProc over pids: CPU ticks, RSS and peak RSS (the sum
// of each process's peak, an upper bound of the group's).
func readProcs(pids []int) (procSnapshot, error) {
	var sum procSnapshot
	for _, pid := range pids {
		s, err := readProc(pid)
		if err != nil {
			return sum, fmt.Errorf("--pid %d: %w", pid, err)
		}
		sum.ticks += s.ticks
		sum.rssKB += s.rssKB
		sum.peakKB += s.peakKB
	}
	return sum, nil
}

// clockTicks is sysconf(_SC_CLK_TCK), from getconf, or the usual 100.
func clockTicks() uint64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if n, err := strconv.ParseUint(strings.TrimSpace(string(out)), 10, 64); err == nil && n > 0 {
			return n
		}
	}
	return 100
}

// selfCPU is this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
