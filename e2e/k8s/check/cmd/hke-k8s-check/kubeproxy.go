package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation/field"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/component-base/logs"
	"k8s.io/kubernetes/cmd/kube-proxy/app"
	kubeproxyconfig "k8s.io/kubernetes/pkg/proxy/apis/config"
	proxyconfigscheme "k8s.io/kubernetes/pkg/proxy/apis/config/scheme"
	proxyvalidation "k8s.io/kubernetes/pkg/proxy/apis/config/validation"
)

// kubeProxyWindowsOnlyFlags are registered by Options.addOSFlags in
// cmd/kube-proxy/app/init_windows.go (//go:build windows); the Linux build
// (init_linux.go) registers none, so for os=windows they are added here with
// the same names and value types.
var kubeProxyWindowsOnlyFlags = []struct {
	name   string
	isBool bool
}{
	{"windows-service", true},
	{"source-vip", false},
	{"network-name", false},
	{"enable-dsr", true},
	{"root-hnsendpoint-name", false},
	{"forward-healthcheck-vip", true},
}

// windowsProxyModes is validateProxyModeWindows' list in
// pkg/proxy/apis/config/validation/validation.go (selected by runtime.GOOS,
// so unreachable from this Linux build); "" means the default (kernelspace).
var windowsProxyModes = map[kubeproxyconfig.ProxyMode]bool{"": true, kubeproxyconfig.ProxyModeKernelspace: true}

// checkKubeProxyFlags parses args with kube-proxy's real command
// (cmd/kube-proxy/app NewProxyCommand: Options.AddFlags plus the process's Go
// flag set), prepared the way component-base/cli.Run prepares it
// (WordSepNormalizeFunc, logging flags, --help). Then, like the command's Args
// and RunE: no positional arguments, --feature-gates must be known gates, and
// when no --config is given (the flags are the whole configuration) on Linux,
// Options.Complete + Options.Validate. A --config path is a node path and is
// not read; its content is checked as its own kube-proxy-config item.
//
// NewProxyCommand adds the process-wide Go flag.CommandLine (for cadvisor's
// --boot-id-file/--machine-id-file); in this binary that set may also hold
// Go flags of other linked packages, so it can accept a few extra names.
func checkKubeProxyFlags(args []string, osName string) error {
	cmd := app.NewProxyCommand()
	cmd.SetGlobalNormalizationFunc(cliflag.WordSepNormalizeFunc)
	logs.AddFlags(cmd.PersistentFlags())
	cmd.InitDefaultHelpFlag()
	fs := cmd.Flags()
	if osName == "windows" {
		for _, wf := range kubeProxyWindowsOnlyFlags {
			if wf.isBool {
				fs.Bool(wf.name, false, "Windows-only (init_windows.go)")
			} else {
				fs.String(wf.name, "", "Windows-only (init_windows.go)")
			}
		}
	}
	var warn strings.Builder
	fs.SetOutput(&warn)
	if err := cmd.ParseFlags(args); err != nil {
		return fmt.Errorf("failed to parse kube-proxy flag: %w", err)
	}
	if warn.Len() > 0 {
		fmt.Fprint(os.Stderr, warn.String())
	}
	for _, a := range fs.Args() {
		if a != "" {
			return fmt.Errorf("%q does not take any arguments, got %q", cmd.CommandPath(), fs.Args())
		}
	}

	gates := map[string]bool{}
	if f := fs.Lookup("feature-gates"); f != nil && f.Changed {
		if err := cliflag.NewMapStringBool(&gates).Set(f.Value.String()); err != nil {
			return fmt.Errorf("--feature-gates: %w", err)
		}
	}
	if err := utilfeature.DefaultMutableFeatureGate.DeepCopy().SetFromMap(gates); err != nil {
		return fmt.Errorf("failed complete: %w", err)
	}

	configGiven := fs.Lookup("config").Changed
	if osName == "windows" {
		if f := fs.Lookup("proxy-mode"); f != nil && !windowsProxyModes[kubeproxyconfig.ProxyMode(f.Value.String())] {
			return fmt.Errorf("failed validate: %v", windowsModeError(kubeproxyconfig.ProxyMode(f.Value.String())))
		}
		return nil
	}
	if configGiven {
		return nil
	}

	// Flags-only configuration on Linux: run the real Complete/Validate on a
	// fresh Options fed the same arguments (the command's own Options value is
	// private to its closure).
	o := app.NewOptions()
	ofs := pflag.NewFlagSet("kube-proxy", pflag.ContinueOnError)
	ofs.SetNormalizeFunc(cliflag.WordSepNormalizeFunc)
	ofs.SetOutput(io.Discard)
	o.AddFlags(ofs)
	ofs.ParseErrorsAllowlist.UnknownFlags = true // Go/global flags live on the command only
	if err := ofs.Parse(args); err != nil {
		return fmt.Errorf("failed to parse kube-proxy flag: %w", err)
	}
	if err := o.Complete(ofs); err != nil {
		return fmt.Errorf("failed complete: %w", err)
	}
	if err := o.Validate(); err != nil {
		return fmt.Errorf("failed validate: %w", err)
	}
	return nil
}

func windowsModeError(mode kubeproxyconfig.ProxyMode) error {
	return field.ErrorList{field.Invalid(field.NewPath("KubeProxyConfiguration").Child("Mode").Child("ProxyMode"), string(mode),
		"must be kernelspace or blank (blank means the most-available proxy [currently 'kernelspace'])")}.ToAggregate()
}

func checkKubeProxyConfigFile(path, osName string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return checkKubeProxyConfigBytes(data, osName)
}

// checkKubeProxyConfigBytes decodes a KubeProxyConfiguration with kube-proxy's
// own codecs (pkg/proxy/apis/config/scheme.Codecs, strict), which is the first
// step of cmd/kube-proxy/app Options.loadConfig; kube-proxy would fall back to
// a lenient decoder with only a log line, this check does not. Then the
// config's feature gates are applied to a copy of the default gate (as
// Options.Complete does) and Options.Validate's
// pkg/proxy/apis/config/validation.Validate runs. Validation picks the
// allowed proxy modes by runtime.GOOS; for os=windows the mode is checked
// against the Windows list here and blanked for the Linux validator.
func checkKubeProxyConfigBytes(data []byte, osName string) error {
	obj, gvk, err := proxyconfigscheme.Codecs.UniversalDecoder().Decode(data, nil, nil)
	if err != nil {
		return fmt.Errorf("failed to decode KubeProxyConfiguration: %w", err)
	}
	cfg, ok := obj.(*kubeproxyconfig.KubeProxyConfiguration)
	if !ok {
		return fmt.Errorf("not a KubeProxyConfiguration: %v", gvk)
	}
	if err := utilfeature.DefaultMutableFeatureGate.DeepCopy().SetFromMap(cfg.FeatureGates); err != nil {
		return fmt.Errorf("feature gates: %w", err)
	}
	c := cfg.DeepCopy()
	if osName == "windows" {
		if !windowsProxyModes[c.Mode] {
			return windowsModeError(c.Mode)
		}
		c.Mode = ""
	}
	if errs := proxyvalidation.Validate(c); len(errs) > 0 {
		return errs.ToAggregate()
	}
	return nil
}
