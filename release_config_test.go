package main

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// goreleaser cannot be built here (one of its dependencies is not served by
// the module proxy), so this checks what the Terraform Registry needs from a
// release: the usual targets, binaries named terraform-provider-<name>_v<version>,
// zip archives, a SHA256SUMS file that includes the manifest, a detached
// signature of it, and the manifest attached to the release.
func TestReleaseConfigHasWhatTheRegistryNeeds(t *testing.T) {
	b, err := os.ReadFile(".goreleaser.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Version   int `json:"version"`
		Before    any `json:"before"`
		Changelog any `json:"changelog"`
		Builds    []struct {
			ModTimestamp string           `json:"mod_timestamp"`
			Ignore       []map[string]any `json:"ignore"`
			Env          []string         `json:"env"`
			Flags        []string         `json:"flags"`
			Ldflags      []string         `json:"ldflags"`
			Goos         []string         `json:"goos"`
			Goarch       []string         `json:"goarch"`
			Binary       string           `json:"binary"`
		} `json:"builds"`
		Archives []struct {
			Formats      []string `json:"formats"`
			NameTemplate string   `json:"name_template"`
		} `json:"archives"`
		Checksum struct {
			NameTemplate string `json:"name_template"`
			Algorithm    string `json:"algorithm"`
			ExtraFiles   []struct {
				Glob         string `json:"glob"`
				NameTemplate string `json:"name_template"`
			} `json:"extra_files"`
		} `json:"checksum"`
		Signs []struct {
			Artifacts string   `json:"artifacts"`
			Args      []string `json:"args"`
		} `json:"signs"`
		Release struct {
			ExtraFiles []struct {
				Glob         string `json:"glob"`
				NameTemplate string `json:"name_template"`
			} `json:"extra_files"`
		} `json:"release"`
	}
	if err := yaml.UnmarshalStrict(b, &cfg); err != nil {
		t.Fatalf(".goreleaser.yml: %v", err)
	}
	if cfg.Version != 2 || len(cfg.Builds) != 1 {
		t.Fatalf("want goreleaser v2 config with one build, got version %d, %d builds", cfg.Version, len(cfg.Builds))
	}
	build := cfg.Builds[0]
	for _, os := range []string{"linux", "darwin", "windows", "freebsd"} {
		if !slices.Contains(build.Goos, os) {
			t.Errorf("no %s build", os)
		}
	}
	for _, arch := range []string{"amd64", "arm64", "arm", "386"} {
		if !slices.Contains(build.Goarch, arch) {
			t.Errorf("no %s build", arch)
		}
	}
	if build.Binary != "{{ .ProjectName }}_v{{ .Version }}" {
		t.Errorf("binary %q: the registry expects terraform-provider-<name>_v<version>", build.Binary)
	}
	if !slices.Contains(build.Env, "CGO_ENABLED=0") || !slices.Contains(build.Flags, "-trimpath") {
		t.Errorf("builds should be static and reproducible (CGO_ENABLED=0, -trimpath)")
	}
	if len(build.Ldflags) == 0 || !strings.Contains(build.Ldflags[0], "-X main.version={{.Version}}") {
		t.Errorf("ldflags must set main.version, which the provider reports")
	}
	if len(cfg.Archives) != 1 || !slices.Equal(cfg.Archives[0].Formats, []string{"zip"}) ||
		cfg.Archives[0].NameTemplate != "{{ .ProjectName }}_{{ .Version }}_{{ .Os }}_{{ .Arch }}" {
		t.Errorf("archives must be zip files named <project>_<version>_<os>_<arch>: %+v", cfg.Archives)
	}
	if cfg.Checksum.NameTemplate != "{{ .ProjectName }}_{{ .Version }}_SHA256SUMS" || cfg.Checksum.Algorithm != "sha256" {
		t.Errorf("checksum file must be <project>_<version>_SHA256SUMS with sha256: %+v", cfg.Checksum)
	}
	manifest := "{{ .ProjectName }}_{{ .Version }}_manifest.json"
	if len(cfg.Checksum.ExtraFiles) != 1 || cfg.Checksum.ExtraFiles[0].Glob != "terraform-registry-manifest.json" || cfg.Checksum.ExtraFiles[0].NameTemplate != manifest {
		t.Errorf("the manifest must be in the checksum file as %s", manifest)
	}
	if len(cfg.Release.ExtraFiles) != 1 || cfg.Release.ExtraFiles[0].NameTemplate != manifest {
		t.Errorf("the manifest must be attached to the release as %s", manifest)
	}
	if len(cfg.Signs) != 1 || cfg.Signs[0].Artifacts != "checksum" || !slices.Contains(cfg.Signs[0].Args, "--detach-sign") {
		t.Errorf("the checksum file must get a detached GPG signature: %+v", cfg.Signs)
	}
}

func TestRegistryManifestSaysProtocol6(t *testing.T) {
	b, err := os.ReadFile("terraform-registry-manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Version  int `json:"version"`
		Metadata struct {
			ProtocolVersions []string `json:"protocol_versions"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.Version != 1 || !slices.Equal(m.Metadata.ProtocolVersions, []string{"6.0"}) {
		t.Errorf("manifest %+v; want version 1, protocol_versions [6.0]", m)
	}
}
