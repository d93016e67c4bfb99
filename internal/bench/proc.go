package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// selfCPU returns the CPU time this process has used (all threads, user + system).
func selfCPU() time.Duration { return rusageSelf() }

// readStatusKB reads a "Name:   123 kB" field of /proc/<pid>/status, in bytes.
func readStatusKB(pid, field string) (int64, error) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, field+":") {
			continue
		}
		f := strings.Fields(line[len(field)+1:])
		if len(f) < 1 {
			break
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, err
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("/proc/%s/status has no %s", pid, field)
}

// selfPeakRSS returns this process's peak resident set (VmHWM) since start or since the last
// resetPeakRSS, or 0 when the system does not say.
func selfPeakRSS() int64 {
	v, err := readStatusKB("self", "VmHWM")
	if err != nil {
		return 0
	}
	return v
}

// resetPeakRSS returns memory the previous scenario left to the runtime to the OS and resets
// this process's peak resident set to its current size, so that the next peak is the next
// scenario's. It reports whether the reset worked (Linux 4.0 and later); without it a peak
// carries over from earlier scenarios.
func resetPeakRSS() bool {
	runtime.GC()
	debug.FreeOSMemory()
	// Writing 5 to clear_refs resets VmHWM to the current RSS (proc(5)).
	f, err := os.OpenFile("/proc/self/clear_refs", os.O_WRONLY, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	_, err = f.WriteString("5")
	return err == nil
}

// childCPU returns the CPU time (user + system) process pid has used so far, from
// /proc/<pid>/stat, which counts a running child, unlike getrusage(RUSAGE_CHILDREN).
func childCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name, field 2, is in parentheses and may hold spaces: count fields after it.
	s := string(b)
	end := strings.LastIndexByte(s, ')')
	if end < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	f := strings.Fields(s[end+1:])
	// After the name: state is field 3, utime field 14 and stime field 15 (1-based).
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times: 100 on every Linux architecture Go
// supports.
const clockTicks = 100

// childPeakRSS returns process pid's peak resident set (VmHWM), or 0 when unknown.
func childPeakRSS(pid int) int64 {
	v, err := readStatusKB(strconv.Itoa(pid), "VmHWM")
	if err != nil {
		return 0
	}
	return v
}

// cpuModel names the processor, from /proc/cpuinfo, or GOARCH when it cannot be read.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if ok && strings.TrimSpace(k) == "model name" {
				return strings.TrimSpace(v)
			}
		}
	}
	return runtime.GOARCH
}
