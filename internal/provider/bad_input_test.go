//go:build !unit

package provider

import (
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

// badInput is a configuration that must fail before anything is done: at
// validate or plan, with a diagnostic that names the attribute (want) and
// what it allows (allowed).
type badInput struct {
	name    string
	config  string
	want    string // the attribute, as the diagnostic names it
	allowed string // what the diagnostic says is allowed (a regexp over the wrapped text)
}

func rotationWith(body string) string {
	return "resource \"kubecreds_lke_secret_rotation\" \"r\" {\n" + body + "\n}\n"
}

func ephemeralWith(body string) string {
	return "ephemeral \"kubecreds_short_lived_kubeconfig\" \"k\" {\n" + body + "\n}\n"
}

// kubeconfigUser is a kubeconfig whose one user is user (YAML flow).
func kubeconfigUser(user string) string {
	return "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \"https://203.0.113.10:6443\"}}]\n" +
		"users: [{name: u, user: {" + user + "}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n"
}

// heredoc quotes s as an HCL heredoc.
func heredoc(s string) string { return "<<-EOT\n" + s + "EOT\n" }

func accountRotationWith(body string) string {
	return "resource \"kubecreds_service_account_rotation\" \"r\" {\n" + body + "\n}\n"
}

func providerWith(body string) string {
	return "provider \"kubecreds\" {\n" + body + "\n}\n" + rotationWith("cluster_id = 1")
}

var badInputs = []badInput{
	// kubecreds_lke_secret_rotation
	{"cluster id 0", rotationWith(`cluster_id = 0`), `cluster_id`, `must be at least 1, got: 0`},
	{"negative cluster id", rotationWith(`cluster_id = -7`), `cluster_id`, `must be at least 1, got: -7`},
	{"cluster id of the wrong type", rotationWith(`cluster_id = "prod"`), `"cluster_id"`, `a number is required`},
	{"cluster id missing", rotationWith(`verify = true`), `"cluster_id"`, `is required`},
	{"unknown argument", rotationWith("cluster_id = 1\ncluster = 2"), `"cluster"`, `is not expected here`},
	{"rotate_every negative", rotationWith("cluster_id = 1\nrotate_every = \"-720h\""), `rotate_every`, `between 1h and 87600h`},
	{"rotate_every too short", rotationWith("cluster_id = 1\nrotate_every = \"5m\""), `rotate_every`, `between 1h and 87600h`},
	{"rotate_every absurd", rotationWith("cluster_id = 1\nrotate_every = \"1000000h\""), `rotate_every`, `between 1h and 87600h`},
	{"rotate_every not a duration", rotationWith("cluster_id = 1\nrotate_every = \"monthly\""), `rotate_every`, `between 1h and 87600h, such as "720h"; got\s+"monthly"`},
	{"rotate_every in days", rotationWith("cluster_id = 1\nrotate_every = \"30d\""), `rotate_every`, `between 1h and 87600h.*no\s+days.*"720h"\s+is\s+30\s+days`},
	{"fractional cluster id", rotationWith(`cluster_id = 1.5`), `cluster_id`, `must be a whole number from 1 to 9223372036854775807, such as 123456; got 1.5`},
	{"cluster id too large", rotationWith(`cluster_id = 99999999999999999999`), `cluster_id`, `must be a whole number from 1 to`},
	{"no namespaces", rotationWith("cluster_id = 1\nnamespaces = []"), `namespaces`, `at least 1 elements`},
	{"empty namespace", rotationWith("cluster_id = 1\nnamespaces = [\"\"]"), `namespaces`, `namespace name`},
	{"invalid namespace", rotationWith("cluster_id = 1\nnamespaces = [\"Kube_System\"]"), `namespaces`, `namespace name`},
	{"keepers of the wrong type", rotationWith("cluster_id = 1\nkeepers = \"OPS-1\""), `"keepers"`, `map of string required`},
	{"a null keeper", rotationWith("cluster_id = 1\nkeepers = { ticket = null }"), `keepers`, `null`},
	{"verify of the wrong type", rotationWith("cluster_id = 1\nverify = \"maybe\""), `"verify"`, `a bool is required`},
	{"nothing to regenerate", rotationWith("cluster_id = 1\nregenerate_kubeconfig = false\nregenerate_service_token = false"), `regenerate_kubeconfig`, `regenerate_service_token`},
	{"unknown workload kind", rotationWith("cluster_id = 1\nrestart_workloads {\nnamespaces = [\"apps\"]\nkinds = [\"pod\"]\n}"), `restart_workloads.kinds`, `must be one of: \["deployment"\s+"daemonset"\s+"statefulset"\]`},
	{"restart without namespaces", rotationWith("cluster_id = 1\nrestart_workloads {\nkinds = [\"deployment\"]\n}"), `restart_workloads`, `namespaces`},
	{"restart with no kinds", rotationWith("cluster_id = 1\nrestart_workloads {\nnamespaces = [\"apps\"]\nkinds = []\n}"), `restart_workloads.kinds`, `at least 1 elements`},
	{"negative timeout", rotationWith("cluster_id = 1\ntimeouts {\ncreate = \"-5m\"\n}"), `timeouts.create`, `must be a positive Go duration`},
	{"service account without namespace", rotationWith("cluster_id = 1\nrevoke_service_accounts = [\"deployer\"]"), `revoke_service_accounts`, `must be namespace/name`},
	{"service account name with capitals", rotationWith("cluster_id = 1\nrevoke_service_accounts = [\"ci/Deploy_Bot\"]"), `revoke_service_accounts`, `must be namespace/name`},
	{"no service accounts to revoke", rotationWith("cluster_id = 1\nrevoke_service_accounts = []"), `revoke_service_accounts`, `at least 1 elements`},
	{"lke-admin in the list", rotationWith("cluster_id = 1\nrevoke_service_accounts = [\"kube-system/lke-admin\"]"), `revoke_service_accounts`, `recreate_admin_service_account`},
	{"control-plane account without a new service token", rotationWith("cluster_id = 1\nregenerate_service_token = false\nrevoke_service_accounts = [\"kube-system/ccm-user\"]"), `revoke_service_accounts`, `Set regenerate_service_token = true`},
	{"admin re-created without a new kubeconfig", rotationWith("cluster_id = 1\nregenerate_kubeconfig = false\nrecreate_admin_service_account = true"), `recreate_admin_service_account`, `needs regenerate_kubeconfig = true`},
	{"timeout not a duration", rotationWith("cluster_id = 1\ntimeouts {\ncreate = \"forever\"\n}"), `create = "forever"`, `must be a string containing a sequence of decimal numbers, each with optional fraction and a unit suffix`},

	// kubecreds_service_account_rotation
	{"no accounts to rotate", accountRotationWith(`service_accounts = []`), `service_accounts`, `at least 1 elements`},
	{"accounts missing", accountRotationWith(`verify = true`), `"service_accounts"`, `is required`},
	{"account without namespace", accountRotationWith(`service_accounts = ["deployer"]`), `service_accounts`, `must be namespace/name`},
	{"account name with capitals", accountRotationWith(`service_accounts = ["ci/Deploy_Bot"]`), `service_accounts`, `must be namespace/name`},
	{"account rotation from two sources", accountRotationWith("service_accounts = [\"ci/deployer\"]\nlke_cluster_id = 1\nbase_kubeconfig = \"x\""), `lke_cluster_id`, `base_kubeconfig`},
	{"account rotation with a malformed kubeconfig", accountRotationWith("service_accounts = [\"ci/deployer\"]\nbase_kubeconfig = \"not: [a kubeconfig\""), `base_kubeconfig`, `must be a kubeconfig`},
	{"account rotation every 5 minutes", accountRotationWith("service_accounts = [\"ci/deployer\"]\nrotate_every = \"5m\""), `rotate_every`, `between 1h and 87600h`},
	{"account rotation with a fractional cluster id", accountRotationWith("service_accounts = [\"ci/deployer\"]\nlke_cluster_id = 0.5"), `lke_cluster_id`, `must be a whole number`},

	// kubecreds_short_lived_kubeconfig
	{"ttl too short", ephemeralWith("lke_cluster_id = 1\nttl = \"5m\""), `ttl`, `between 10m and 4320h`},
	{"ttl absurd", ephemeralWith("lke_cluster_id = 1\nttl = \"100000h\""), `ttl`, `between 10m and 4320h`},
	{"ttl negative", ephemeralWith("lke_cluster_id = 1\nttl = \"-1h\""), `ttl`, `between 10m and 4320h`},
	{"ttl in days", ephemeralWith("lke_cluster_id = 1\nttl = \"7d\""), `ttl`, `between 10m and 4320h.*no\s+days`},
	{"ttl missing", ephemeralWith("lke_cluster_id = 1"), `"ttl"`, `is required`},
	{"two sources", ephemeralWith("lke_cluster_id = 1\nbase_kubeconfig = \"x\"\nttl = \"1h\""), `lke_cluster_id`, `base_kubeconfig`},
	{"lke cluster id 0", ephemeralWith("lke_cluster_id = 0\nttl = \"1h\""), `lke_cluster_id`, `must be at least 1, got: 0`},
	{"fractional lke cluster id", ephemeralWith("lke_cluster_id = 2.5\nttl = \"1h\""), `lke_cluster_id`, `must be a whole number`},
	{"malformed base kubeconfig", ephemeralWith("base_kubeconfig = \"not: [a kubeconfig\"\nttl = \"1h\""), `base_kubeconfig`, `must be a kubeconfig`},
	{"base kubeconfig with an exec plugin", ephemeralWith("base_kubeconfig = " + heredoc(kubeconfigUser("exec: {apiVersion: client.authentication.k8s.io/v1, command: get-token, interactiveMode: Never}")) + "\nttl = \"1h\""),
		`base_kubeconfig`, regexp.QuoteMeta(`users["u"].exec (command "get-token") (a credential plugin runs only when allow_exec_plugins = true)`)},
	{"base kubeconfig with a token file", ephemeralWith("base_kubeconfig = " + heredoc(kubeconfigUser("tokenFile: /var/run/token")) + "\nttl = \"1h\"\nallow_exec_plugins = true"),
		`base_kubeconfig`, regexp.QuoteMeta(`users["u"].tokenFile ("/var/run/token") (a kubeconfig given as a value must carry its credentials inline`)},
	{"account rotation with an exec plugin", accountRotationWith("service_accounts = [\"ci/deployer\"]\nbase_kubeconfig = " + heredoc(kubeconfigUser("exec: {apiVersion: client.authentication.k8s.io/v1, command: aws, interactiveMode: Never}"))),
		`base_kubeconfig`, regexp.QuoteMeta(`users["u"].exec (command "aws")`)},
	{"unknown mode", ephemeralWith("lke_cluster_id = 1\nttl = \"1h\"\nmode = \"oidc\""), `mode`, `must be one of: \["service_account"\s+"client_certificate"\]`},
	{"certificate without user", ephemeralWith("lke_cluster_id = 1\nttl = \"1h\"\nmode = \"client_certificate\""), `user`, `the user name the certificate is for`},
	{"system:masters certificate", ephemeralWith("lke_cluster_id = 1\nttl = \"1h\"\nmode = \"client_certificate\"\nuser = \"a\"\ngroups = [\"system:masters\"]"), `groups`, `must be none of: \["system:masters"\]`},
	{"audiences in certificate mode", ephemeralWith("lke_cluster_id = 1\nttl = \"1h\"\nmode = \"client_certificate\"\nuser = \"a\"\naudiences = [\"x\"]"), `audiences`, `mode = "service_account" only`},
	{"user in token mode", ephemeralWith("lke_cluster_id = 1\nttl = \"1h\"\nuser = \"a\""), `user`, `mode = "client_certificate" only`},
	{"invalid service account name", ephemeralWith("lke_cluster_id = 1\nttl = \"1h\"\nservice_account {\nnamespace = \"ci\"\nname = \"Deploy_Bot\"\n}"), `service_account.name`, `must be a Kubernetes service account name`},
	{"namespace too long", rotationWith("cluster_id = 1\nnamespaces = [\"" + strings.Repeat("a", 64) + "\"]"), `namespaces`, `at most 63 characters`},
	{"half a service account", ephemeralWith("lke_cluster_id = 1\nttl = \"1h\"\nservice_account {\nname = \"x\"\n}"), `service_account`, `both namespace and name`},

	// provider
	{"unknown Linode API version", providerWith(`linode_api_version = "v3"`), `linode_api_version`, `must be one of: \["v4"\s+"v4beta"\]`},
	{"request timeout zero", providerWith(`request_timeout = "0s"`), `request_timeout`, `between 1s and 10m`},
	{"request timeout not a duration", providerWith(`request_timeout = "30 seconds"`), `request_timeout`, `between 1s and 10m, such as "30s"`},
	{"request timeout absurd", providerWith(`request_timeout = "48h"`), `request_timeout`, `between 1s and 10m`},
	{"negative retries", providerWith(`max_retries = -1`), `max_retries`, `between 0 and 20`},
	{"absurd retries", providerWith(`max_retries = 1000`), `max_retries`, `between 0 and 20`},
	{"Linode API URL over http", providerWith(`linode_api_url = "http://api.linode.com"`), `linode_api_url`, `must be an https:// URL with a host`},
	{"Linode API URL malformed", providerWith(`linode_api_url = "api.linode.com/v4"`), `linode_api_url`, `must be an https:// URL with a host`},
	{"Linode CA file missing", providerWith(`linode_ca_path = "/nonexistent/linode-ca.pem"`), `linode_ca_path`, `cannot be read`},
	{"Linode CA file not PEM", providerWith(`linode_ca_path = "/etc/passwd"`), `linode_ca_path`, `holds no PEM certificate`},
	{"empty Linode token for a rotation", providerWith(`linode_token = ""`), `linode_token`, `lke:read_write`},
	{"kubeconfig paths missing", "provider \"kubecreds\" {\nkubernetes {\nconfig_paths = [\"/nonexistent/a\"]\n}\n}\n" + ephemeralWith("ttl = \"1h\""), `kubernetes.config_paths`, `cannot be read`},
	{"config_path and config_paths", "provider \"kubecreds\" {\nkubernetes {\nconfig_path = \"/etc/hostname\"\nconfig_paths = [\"/etc/hostname\"]\n}\n}\n" + ephemeralWith("ttl = \"1h\""), `config_paths`, `cannot be specified when`},
	{"proxy URL not a proxy", "provider \"kubecreds\" {\nkubernetes {\nhost = \"https://203.0.113.10:6443\"\nproxy_url = \"ftp://proxy\"\n}\n}\n" + ephemeralWith("ttl = \"1h\""), `kubernetes.proxy_url`, `must be an http://, https:// or socks5:// URL`},
	{"proxy URL with a password, not a proxy", "provider \"kubecreds\" {\nkubernetes {\nhost = \"https://203.0.113.10:6443\"\nproxy_url = \"ftp://user:s3cr3t-proxy-pass@proxy\"\n}\n}\n" + ephemeralWith("ttl = \"1h\""), `kubernetes.proxy_url`, `"ftp://user:xxxxx@proxy"`},
	{"exec without command", "provider \"kubecreds\" {\nkubernetes {\nhost = \"https://203.0.113.10:6443\"\nexec {\napi_version = \"client.authentication.k8s.io/v1\"\n}\n}\n}\n" + ephemeralWith("ttl = \"1h\""), `kubernetes.exec`, `needs command`},
	{"exec of an unknown API version", "provider \"kubecreds\" {\nkubernetes {\nhost = \"https://203.0.113.10:6443\"\nexec {\napi_version = \"v1\"\ncommand = \"get-token\"\n}\n}\n}\n" + ephemeralWith("ttl = \"1h\""), `api_version`, `must be one of: \["client.authentication.k8s.io/v1"\s+"client.authentication.k8s.io/v1beta1"\]`},
	{"kubeconfig path missing", "provider \"kubecreds\" {\nkubernetes {\nconfig_path = \"/nonexistent/kubeconfig\"\n}\n}\n" + ephemeralWith("ttl = \"1h\""), `kubernetes.config_path`, `cannot be read`},

	// kubecreds_lke_service_account_tokens
	{"data source fractional cluster id", "data \"kubecreds_lke_service_account_tokens\" \"t\" {\ncluster_id = 0.5\n}\n", `cluster_id`, `must be a whole number`},
	{"data source cluster id 0", "data \"kubecreds_lke_service_account_tokens\" \"t\" {\ncluster_id = 0\n}\n", `cluster_id`, `must be at least 1, got: 0`},
	{"data source invalid namespace", "data \"kubecreds_lke_service_account_tokens\" \"t\" {\ncluster_id = 1\nnamespaces = [\"UPPER\"]\n}\n", `namespaces`, `namespace name`},
}

// TestAccBadInputCatalogue runs each bad configuration through terraform
// (validate, then plan) and expects it to fail naming the attribute and what
// is allowed, before any request reaches the Linode API. It is not parallel:
// the emulator's request count covers only these plans.
func TestAccBadInputCatalogue(t *testing.T) {
	if len(badInputs) < 25 {
		t.Fatalf("the catalogue holds %d configurations; it is meant to hold at least 25", len(badInputs))
	}
	before := testEnv.Emulator.CountRequests("")
	rejected := runCatalogue(t, badInputs)
	calls := testEnv.Emulator.CountRequests("") - before
	t.Logf("bad input catalogue: %d of %d configurations rejected at validate/plan; Linode API requests made: %d", rejected, len(badInputs), calls)
	if calls != 0 {
		t.Errorf("the bad configurations made %d Linode API requests; want none", calls)
	}
}

// runCatalogue plans each bad configuration, expecting it to fail naming
// the attribute and what is allowed, and returns how many did. The
// configurations run in parallel with each other and, since the calling
// test is not parallel, with nothing else: a count of API requests around
// the call covers these plans only. It returns once all have ended.
func runCatalogue(t *testing.T, inputs []badInput) int64 {
	t.Helper()
	var rejected atomic.Int64
	t.Run("catalogue", func(t *testing.T) {
		for _, b := range inputs {
			t.Run(b.name, func(t *testing.T) {
				t.Parallel()
				resource.Test(t, resource.TestCase{
					TerraformVersionChecks:   ephemeralVersions,
					ProtoV6ProviderFactories: testProviders,
					Steps: []resource.TestStep{{
						Config:      b.config,
						PlanOnly:    true,
						ExpectError: regexp.MustCompile(`(?s)` + attributePattern(b.want) + `.*` + wrappedPattern(b.allowed) + `|` + wrappedPattern(b.allowed) + `.*` + attributePattern(b.want)),
					}},
				})
				if !t.Failed() {
					rejected.Add(1)
				}
			})
		}
	})
	return rejected.Load()
}

func attributePattern(attr string) string {
	return regexp.QuoteMeta(attr)
}

// wrappedPattern lets a regexp match across terraform's line wrapping (and
// its indentation), wherever the text has a space.
func wrappedPattern(re string) string {
	return strings.Join(strings.Fields(re), `\s+`)
}
