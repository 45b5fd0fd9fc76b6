package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/component-base/featuregate"
	"k8s.io/component-base/logs"
	"k8s.io/component-base/version/verflag"
	"k8s.io/kubernetes/cmd/kubelet/app/options"
	kubeletconfig "k8s.io/kubernetes/pkg/kubelet/apis/config"
	kubeletscheme "k8s.io/kubernetes/pkg/kubelet/apis/config/scheme"
	kubeletvalidation "k8s.io/kubernetes/pkg/kubelet/apis/config/validation"
	"k8s.io/kubernetes/pkg/kubelet/eviction"
	"k8s.io/kubernetes/pkg/kubelet/kubeletconfig/configfiles"
	utilfs "k8s.io/kubernetes/pkg/util/filesystem"

	"k8s.io/apimachinery/pkg/runtime/serializer"
)

// kubeletWindowsOnlyFlags are registered by KubeletFlags.addOSFlags in
// cmd/kubelet/app/options/osflags_windows.go (//go:build windows); the Linux
// build (osflags_others.go) registers none. A Linux build of the kubelet flag
// set therefore lacks them, so for os=windows they are added here with the
// same names and value types.
var kubeletWindowsOnlyFlags = []struct {
	name   string
	isBool bool
}{
	{"windows-service", true},
	{"windows-priorityclass", false},
}

// newKubeletFlagSet mirrors cmd/kubelet/app/server.go NewKubeletCommand: a
// standalone pflag set (ContinueOnError, WordSepNormalizeFunc) filled by
// KubeletFlags.AddFlags, AddKubeletConfigFlags(NewKubeletConfiguration()),
// AddGlobalFlags and a --help/-h bool.
//
// For os=windows the set is rebuilt for a Windows kubelet: AddGlobalFlags
// calls addCadvisorFlags, which in cmd/kubelet/app/options/globalflags_linux.go
// registers cadvisor's --housekeeping-interval and the deprecated cadvisor
// flags, while globalflags_other.go (!linux) registers nothing. Those names are
// found by diffing AddGlobalFlags against its OS-neutral parts
// (verflag.AddFlags, logs.AddFlags(SkipLoggingConfigurationFlags)) and
// dropped, and the Windows-only flags above are added.
func newKubeletFlagSet(osName string) (*pflag.FlagSet, *options.KubeletFlags, *kubeletconfig.KubeletConfiguration, error) {
	kf := options.NewKubeletFlags()
	kc, err := options.NewKubeletConfiguration()
	if err != nil {
		return nil, nil, nil, err
	}
	fs := pflag.NewFlagSet("kubelet", pflag.ContinueOnError)
	fs.SetNormalizeFunc(cliflag.WordSepNormalizeFunc)
	kf.AddFlags(fs)
	options.AddKubeletConfigFlags(fs, kc)
	options.AddGlobalFlags(fs)
	fs.BoolP("help", "h", false, "help for kubelet")
	if osName != "windows" {
		return fs, kf, kc, nil
	}

	linuxOnly := linuxOnlyKubeletGlobalFlags()
	win := pflag.NewFlagSet("kubelet", pflag.ContinueOnError)
	win.SetNormalizeFunc(cliflag.WordSepNormalizeFunc)
	fs.VisitAll(func(f *pflag.Flag) {
		if !linuxOnly[f.Name] {
			win.AddFlag(f)
		}
	})
	for _, wf := range kubeletWindowsOnlyFlags {
		if wf.isBool {
			win.Bool(wf.name, false, "Windows-only (osflags_windows.go)")
		} else {
			win.String(wf.name, "", "Windows-only (osflags_windows.go)")
		}
	}
	return win, kf, kc, nil
}

// linuxOnlyKubeletGlobalFlags returns the flag names that options.AddGlobalFlags
// adds on Linux only (addCadvisorFlags in globalflags_linux.go).
func linuxOnlyKubeletGlobalFlags() map[string]bool {
	all := pflag.NewFlagSet("all", pflag.ContinueOnError)
	all.SetNormalizeFunc(cliflag.WordSepNormalizeFunc)
	options.AddGlobalFlags(all)
	neutral := pflag.NewFlagSet("neutral", pflag.ContinueOnError)
	neutral.SetNormalizeFunc(cliflag.WordSepNormalizeFunc)
	verflag.AddFlags(neutral)
	logs.AddFlags(neutral, logs.SkipLoggingConfigurationFlags())
	out := map[string]bool{}
	all.VisitAll(func(f *pflag.Flag) {
		if neutral.Lookup(f.Name) == nil {
			out[f.Name] = true
		}
	})
	return out
}

// checkKubeletFlags parses args with the kubelet's own flag set, then runs
// what NewKubeletCommand's RunE does before it touches the node: reject
// positional arguments, apply --feature-gates (to a copy of the default
// gate), options.ValidateKubeletFlags, and ValidateKubeletConfiguration on
// the configuration built from the flags. A --config file named in args is a
// path on the node and is not read; its content is checked as its own
// kubelet-config item.
func checkKubeletFlags(args []string, osName string) error {
	fs, kf, kc, err := newKubeletFlagSet(osName)
	if err != nil {
		return err
	}
	var warn strings.Builder
	fs.SetOutput(&warn) // deprecation notices; passed on to stderr below
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("failed to parse kubelet flag: %w", err)
	}
	if warn.Len() > 0 {
		fmt.Fprint(os.Stderr, warn.String())
	}
	if rest := fs.Args(); len(rest) > 0 {
		return fmt.Errorf("unknown command %+s", rest[0])
	}
	gate := utilfeature.DefaultMutableFeatureGate.DeepCopy()
	if err := gate.SetFromMap(kc.FeatureGates); err != nil {
		return fmt.Errorf("failed to set feature gates from initial flags-based config: %w", err)
	}
	if err := options.ValidateKubeletFlags(kf); err != nil {
		return fmt.Errorf("failed to validate kubelet flags: %w", err)
	}
	if err := validateKubeletConfig(kc, gate, osName); err != nil {
		return fmt.Errorf("flag-derived kubelet configuration: %w", err)
	}
	return nil
}

// checkKubeletConfigFile loads a KubeletConfiguration file the way the
// kubelet does (pkg/kubelet/kubeletconfig/configfiles.NewFsLoader(...).Load,
// used by cmd/kubelet/app/server.go loadConfigFile) and, unlike the kubelet,
// refuses what the kubelet would only log: its codec falls back to a lenient
// decoder (unknown/duplicate fields ignored with a warning) when the strict
// one fails.
func checkKubeletConfigFile(path, osName string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if _, err := strictDecodeKubeletConfig(data); err != nil {
		return err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	loader, err := configfiles.NewFsLoader(&utilfs.DefaultFs{}, abs)
	if err != nil {
		return err
	}
	kc, err := loader.Load(context.Background())
	if err != nil {
		return err
	}
	return finishKubeletConfig(kc, osName)
}

// checkKubeletConfigBytes is checkKubeletConfigFile for a document embedded
// in another file (a kubeadm config).
func checkKubeletConfigBytes(data []byte, osName string) error {
	kc, err := strictDecodeKubeletConfig(data)
	if err != nil {
		return err
	}
	return finishKubeletConfig(kc, osName)
}

// strictDecodeKubeletConfig is the first, strict, step of
// pkg/kubelet/kubeletconfig/util/codec.DecodeKubeletConfiguration with the
// kubelet's own scheme (pkg/kubelet/apis/config/scheme, EnableStrict).
func strictDecodeKubeletConfig(data []byte) (*kubeletconfig.KubeletConfiguration, error) {
	_, codecs, err := kubeletscheme.NewSchemeAndCodecs(serializer.EnableStrict)
	if err != nil {
		return nil, err
	}
	obj, gvk, err := codecs.UniversalDecoder().Decode(data, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("failed to decode KubeletConfiguration: %w", err)
	}
	kc, ok := obj.(*kubeletconfig.KubeletConfiguration)
	if !ok {
		return nil, fmt.Errorf("not a KubeletConfiguration: %v", gvk)
	}
	return kc, nil
}

// finishKubeletConfig applies loadConfigFile's EvictionHard default, the
// config's feature gates, and the kubelet's validation.
func finishKubeletConfig(kc *kubeletconfig.KubeletConfiguration, osName string) error {
	if kc.EvictionHard == nil {
		kc.EvictionHard = eviction.DefaultEvictionHard
	} else if kc.MergeDefaultEvictionSettings {
		for k, v := range eviction.DefaultEvictionHard {
			if _, ok := kc.EvictionHard[k]; !ok {
				kc.EvictionHard[k] = v
			}
		}
	}
	gate := utilfeature.DefaultMutableFeatureGate.DeepCopy()
	if err := gate.SetFromMap(kc.FeatureGates); err != nil {
		return fmt.Errorf("feature gates: %w", err)
	}
	return validateKubeletConfig(kc, gate, osName)
}

// validateKubeletConfig runs pkg/kubelet/apis/config/validation
// ValidateKubeletConfiguration (this binary's Linux build).
//
// Two Linux checks in validation_linux.go depend on the host running the
// check, not on the file: failCgroupV1 (default true) fails on a cgroup v1
// host, and an explicit singleProcessOOMKill=false fails on cgroup v1. The
// node's cgroup version is unknown here, so both are neutralised first.
//
// For os=windows the rules of validation_windows.go that differ are added
// (same messages): singleProcessOOMKill and userNamespaces are errors there.
func validateKubeletConfig(kc *kubeletconfig.KubeletConfiguration, gate featuregate.FeatureGate, osName string) error {
	if osName == "windows" {
		if kc.SingleProcessOOMKill != nil {
			return errors.New("invalid configuration: singleProcessOOMKill is not supported on Windows")
		}
		if kc.UserNamespaces != nil {
			return errors.New("invalid configuration: userNamespaces is not supported on Windows")
		}
	}
	c := kc.DeepCopy()
	c.FailCgroupV1 = false
	if c.SingleProcessOOMKill != nil && !*c.SingleProcessOOMKill {
		c.SingleProcessOOMKill = nil
	}
	return kubeletvalidation.ValidateKubeletConfiguration(c, gate)
}
