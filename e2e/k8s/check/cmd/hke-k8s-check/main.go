// Command hke-k8s-check runs upstream Kubernetes, containerd, CNI and flannel
// parsers on files rendered by hke.
//
// Usage: hke-k8s-check [-inproc] INDEX.json
//
// INDEX.json lists the things to check (see index.go). For each item it prints
// one line, "ok   <kind> <name>" or "FAIL <kind> <name>: <upstream error>",
// then "N passed, M failed". Exit status: 0 all passed, 1 some failed,
// 2 the index itself is unusable.
//
// Each item is checked in a child process (this binary re-executed) because
// the upstream code keeps process-wide state (feature gates, klog flags,
// containerd's plugin registry defaults) that one item could otherwise leak
// into the next. -inproc (or HKE_K8S_CHECK_INPROC=1) checks everything in this
// process instead, which is quicker and easier to debug.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// childEnv carries one item, JSON-encoded, to a child process.
const childEnv = "HKE_K8S_CHECK_ITEM"

func main() {
	if raw, ok := os.LookupEnv(childEnv); ok {
		os.Exit(runChild(raw))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func usage(stderr io.Writer) int {
	fmt.Fprintln(stderr, "usage: hke-k8s-check [-inproc] INDEX.json")
	return 2
}

func run(args []string, stdout, stderr io.Writer) int {
	inproc := os.Getenv("HKE_K8S_CHECK_INPROC") == "1"
	var paths []string
	for _, a := range args {
		switch a {
		case "-inproc", "--inproc":
			inproc = true
		case "-h", "-help", "--help":
			usage(stderr)
			return 0
		default:
			if strings.HasPrefix(a, "-") {
				return usage(stderr)
			}
			paths = append(paths, a)
		}
	}
	if len(paths) != 1 {
		return usage(stderr)
	}
	idx, err := loadIndex(paths[0])
	if err != nil {
		fmt.Fprintf(stderr, "hke-k8s-check: bad index %s: %v\n", paths[0], err)
		return 2
	}

	passed, failed := 0, 0
	for _, it := range idx.Items {
		var err error
		if inproc {
			err = checkItem(it)
		} else {
			err = checkInChild(it, stderr)
		}
		if err != nil {
			failed++
			fmt.Fprintf(stdout, "FAIL %s %s: %s\n", it.Kind, it.Name, oneLine(err.Error()))
		} else {
			passed++
			fmt.Fprintf(stdout, "ok   %s %s\n", it.Kind, it.Name)
		}
	}
	fmt.Fprintf(stdout, "%d passed, %d failed\n", passed, failed)
	if failed > 0 {
		return 1
	}
	return 0
}

// oneLine keeps each result on a single output line.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\n", " | ")
}

// checkInChild re-executes this binary to check one item. The child writes
// the upstream error (if any) to stdout and exits 1; anything it logs on
// stderr (klog warnings, deprecation notices) is passed through, prefixed.
func checkInChild(it Item, stderr io.Writer) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("hke-k8s-check: cannot find own executable: %w", err)
	}
	raw, err := json.Marshal(it)
	if err != nil {
		return err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), childEnv+"="+string(raw))
	var out, errOut bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errOut
	runErr := cmd.Run()
	if errOut.Len() > 0 {
		for _, l := range strings.Split(strings.TrimRight(errOut.String(), "\n"), "\n") {
			fmt.Fprintf(stderr, "  [%s %s] %s\n", it.Kind, it.Name, l)
		}
	}
	var ee *exec.ExitError
	switch {
	case runErr == nil:
		return nil
	case errors.As(runErr, &ee) && ee.ExitCode() == 1 && out.Len() > 0:
		return errors.New(strings.TrimSpace(out.String()))
	default:
		return fmt.Errorf("checker child process failed (%v): %s", runErr, strings.TrimSpace(out.String()+" "+lastLine(errOut.String())))
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func runChild(raw string) int {
	var it Item
	if err := json.Unmarshal([]byte(raw), &it); err != nil {
		fmt.Fprintf(os.Stdout, "bad item passed to child: %v\n", err)
		return 2
	}
	if err := checkItem(it); err != nil {
		fmt.Fprintln(os.Stdout, err.Error())
		return 1
	}
	return 0
}

// checkItem dispatches one index item to the upstream code for its kind.
func checkItem(it Item) (err error) {
	// Upstream code is not written to be called on arbitrary input from a
	// foreign main; never let a panic take the whole run down.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic in upstream code: %v", r)
		}
	}()
	switch it.Kind {
	case KindKubeadmConfig:
		return checkKubeadmConfig(it.Path)
	case KindContainerdConfig:
		return checkContainerdConfig(it.Path, it.OS)
	case KindPlatform:
		return checkPlatform(it.Value)
	case KindCNI:
		return checkCNI(it.Path)
	case KindFlannelNetConf:
		return checkFlannelNetConf(it.Path, it.OS)
	case KindKubeletFlags:
		return checkKubeletFlags(it.Args, it.OS)
	case KindKubeletConfig:
		return checkKubeletConfigFile(it.Path, it.OS)
	case KindKubeProxyConfig:
		return checkKubeProxyConfigFile(it.Path, it.OS)
	case KindKubeProxyFlags:
		return checkKubeProxyFlags(it.Args, it.OS)
	}
	return fmt.Errorf("unknown kind %q", it.Kind)
}
