package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"

	srvconfig "github.com/containerd/containerd/v2/cmd/containerd/server/config"
	ctrdversion "github.com/containerd/containerd/v2/version"
	"github.com/containerd/log"
	"github.com/containerd/plugin"
	"github.com/containerd/plugin/registry"
	"github.com/pelletier/go-toml/v2"

	// The three CRI plugins. Importing them registers their plugin.Registration
	// (config type, defaults and ConfigMigration) in containerd's global
	// plugin registry, exactly as in the containerd binary. Their config
	// structs live in containerd's internal/cri/config and can only be reached
	// through these registrations.
	_ "github.com/containerd/containerd/v2/plugins/cri"
	_ "github.com/containerd/containerd/v2/plugins/cri/images"
	_ "github.com/containerd/containerd/v2/plugins/cri/runtime"
)

// The CRI plugin IDs whose sections are decoded strictly.
const (
	criRuntimeID = "io.containerd.cri.v1.runtime"
	criImagesID  = "io.containerd.cri.v1.images"
	criGRPCID    = "io.containerd.grpc.v1.cri"
)

var criPluginIDs = []string{criRuntimeID, criImagesID, criGRPCID}

// checkContainerdConfig loads a containerd config.toml with containerd v2's
// own loader and then decodes the CRI plugin sections into containerd's CRI
// config structs:
//
//  1. srvconfig.LoadConfig (cmd/containerd/server/config), into a config whose
//     Version is the current one as the containerd command's default config
//     has: TOML syntax errors such as a table defined twice or a wrong value
//     type fail here; version 1 plugin names are migrated; imports are
//     followed; a version above 3 fails.
//  2. For version < 3 files, the same migrations cmd/containerd/server.New
//     runs: Config.MigrateConfig and every registered plugin's
//     ConfigMigration for each version step (this is how a version 2
//     [plugins."io.containerd.grpc.v1.cri"] is split into the
//     io.containerd.cri.v1.runtime / images sections).
//  3. For each CRI plugin section present, containerd's Config.Decode (which
//     only warns about unknown keys and decodes leniently), then a strict
//     decode of the same section (go-toml/v2 DisallowUnknownFields) into a
//     fresh value of the plugin's registered config type, failing on unknown
//     keys containerd would ignore.
//
// Stricter than containerd: top-level keys containerd's loader would ignore
// with a warning fail, as do [plugins."io.containerd.cri.v1.*"] sections for
// plugins that do not exist. The CRI plugins' own Validate*Config functions
// (internal/cri/config) need a running containerd (their InitFn resolves
// metadata/transfer plugins first), so only one of their rules is repeated:
// containerd.default_runtime_name must name a configured runtime.
func checkContainerdConfig(path, osName string) error {
	ctx := log.WithLogger(context.Background(), log.L)

	cfg := &srvconfig.Config{
		Version:          ctrdversion.ConfigVersion,
		Plugins:          map[string]interface{}{},
		ProxyPlugins:     map[string]srvconfig.ProxyPlugin{},
		StreamProcessors: map[string]srvconfig.StreamProcessor{},
		Timeouts:         map[string]string{},
	}
	if err := srvconfig.LoadConfig(ctx, path, cfg); err != nil {
		return fmt.Errorf("containerd LoadConfig: %w", err)
	}
	if err := strictTopLevel(path); err != nil {
		return err
	}

	regs := registry.Graph(func(*plugin.Registration) bool { return false })
	if cur := cfg.Version; cur < ctrdversion.ConfigVersion {
		if err := cfg.MigrateConfig(ctx); err != nil {
			return fmt.Errorf("containerd config migration: %w", err)
		}
		for v := cur; v < ctrdversion.ConfigVersion; v++ {
			for _, r := range regs {
				if r.ConfigMigration != nil {
					if err := r.ConfigMigration(ctx, v, cfg.Plugins); err != nil {
						return fmt.Errorf("plugin %s config migration from version %d: %w", r.URI(), v, err)
					}
				}
			}
		}
	}

	var unknown []string
	for id := range cfg.Plugins {
		if strings.HasPrefix(id, "io.containerd.cri.") && id != criRuntimeID && id != criImagesID {
			unknown = append(unknown, id)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("no such CRI plugin (containerd would ignore the section): %s", strings.Join(unknown, ", "))
	}

	byID := map[string]plugin.Registration{}
	for _, r := range regs {
		byID[r.URI()] = r
	}
	for _, id := range criPluginIDs {
		r, ok := byID[id]
		if !ok || r.Config == nil {
			return fmt.Errorf("internal: plugin %s is not registered in this build", id)
		}
		section, present := cfg.Plugins[id]
		if !present {
			continue
		}
		t := reflect.TypeOf(r.Config)
		if t.Kind() != reflect.Pointer {
			return fmt.Errorf("internal: plugin %s config is a %v, not a pointer", id, t)
		}
		// containerd's own decode (lenient about unknown keys).
		if _, err := cfg.Decode(ctx, id, reflect.New(t.Elem()).Interface()); err != nil {
			return fmt.Errorf("plugin %s: %w", id, err)
		}
		// The strict decode.
		b, err := toml.Marshal(section)
		if err != nil {
			return fmt.Errorf("plugin %s: re-encoding section: %w", id, err)
		}
		dec := toml.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(reflect.New(t.Elem()).Interface()); err != nil {
			return fmt.Errorf("plugin %s: %s", id, tomlErr(err))
		}
	}

	if sec, ok := cfg.Plugins[criRuntimeID].(map[string]interface{}); ok {
		if err := checkDefaultRuntime(sec, osName); err != nil {
			return fmt.Errorf("plugin %s: %w", criRuntimeID, err)
		}
	}
	return nil
}

// strictTopLevel decodes the file into containerd's top-level Config with
// unknown keys disallowed. containerd's loadConfigFile tries exactly this
// first and, on unknown keys, logs "Ignoring unknown key in TOML" and decodes
// again leniently.
func strictTopLevel(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c srvconfig.Config
	if err := dec.Decode(&c); err != nil {
		return fmt.Errorf("containerd config: %s", tomlErr(err))
	}
	return nil
}

// tomlErr renders go-toml errors with their position / offending keys.
func tomlErr(err error) string {
	var serr *toml.StrictMissingError
	if errors.As(err, &serr) {
		var keys []string
		for _, e := range serr.Errors {
			row, col := e.Position()
			keys = append(keys, fmt.Sprintf("%s (row %d column %d)", strings.Join(e.Key(), "."), row, col))
		}
		return "unknown keys (containerd would ignore them): " + strings.Join(keys, ", ")
	}
	var derr *toml.DecodeError
	if errors.As(err, &derr) {
		row, col := derr.Position()
		return fmt.Sprintf("TOML error at row %d column %d: %v", row, col, err)
	}
	return err.Error()
}

// Defaults of containerd.default_runtime_name and containerd.runtimes from
// containerd v2.2 internal/cri/config/config_unix.go and config_windows.go.
var criDefaultRuntimes = map[string]struct {
	name     string
	runtimes []string
}{
	"linux":   {"runc", []string{"runc"}},
	"windows": {"runhcs-wcow-process", []string{"runhcs-wcow-process", "runhcs-wcow-hypervisor"}},
}

// checkDefaultRuntime repeats ValidateRuntimeConfig's rule (internal/cri/
// config/config.go): the default runtime must be one of containerd.runtimes
// (the platform's default runtimes merged with the file's).
func checkDefaultRuntime(section map[string]interface{}, osName string) error {
	def := criDefaultRuntimes[osName]
	name, known := def.name, map[string]bool{}
	for _, r := range def.runtimes {
		known[r] = true
	}
	if c, ok := section["containerd"].(map[string]interface{}); ok {
		if n, ok := c["default_runtime_name"].(string); ok {
			name = n
		}
		if rs, ok := c["runtimes"].(map[string]interface{}); ok {
			for k := range rs {
				known[k] = true
			}
		}
	}
	if name == "" {
		return errors.New("`default_runtime_name` is empty")
	}
	if !known[name] {
		return fmt.Errorf("no corresponding runtime configured in `containerd.runtimes` for `containerd` `default_runtime_name = \"%s\"", name)
	}
	return nil
}
