//go:build !unit

package provider

import (
	"testing"
)

func skeRotationWith(body string) string {
	return "resource \"kubecreds_ske_credentials_rotation\" \"r\" {\n" + body + "\n}\n"
}

const skeCluster = "project_id = \"p-1\"\nregion = \"eu01\"\ncluster_name = \"prod\"\n"

func skeEphemeralWith(body string) string {
	return "ephemeral \"kubecreds_ske_kubeconfig\" \"k\" {\n" + body + "\n}\n"
}

func skeProviderWith(body string) string {
	return "provider \"kubecreds\" {\nstackit {\n" + body + "\n}\n}\n" + skeRotationWith(skeCluster)
}

var skeBadInputs = []badInput{
	// kubecreds_ske_credentials_rotation
	{"cluster name in capitals", skeRotationWith("project_id = \"p-1\"\nregion = \"eu01\"\ncluster_name = \"Prod\""), `cluster_name`, `1 to 11 lowercase letters, digits and hyphens`},
	{"cluster name too long", skeRotationWith("project_id = \"p-1\"\nregion = \"eu01\"\ncluster_name = \"production01\""), `cluster_name`, `1 to 11 lowercase letters, digits and hyphens`},
	{"cluster name starting with a hyphen", skeRotationWith("project_id = \"p-1\"\nregion = \"eu01\"\ncluster_name = \"-prod\""), `cluster_name`, `starting and ending with a letter or digit`},
	{"cluster name ending with a hyphen", skeRotationWith("project_id = \"p-1\"\nregion = \"eu01\"\ncluster_name = \"prod-\""), `cluster_name`, `\^\[a-z0-9\]\(\[a-z0-9-\]\{0,9\}\[a-z0-9\]\)\?\$`},
	{"cluster name with an underscore", skeRotationWith("project_id = \"p-1\"\nregion = \"eu01\"\ncluster_name = \"cl_ab12\""), `cluster_name`, `1 to 11 lowercase letters, digits and hyphens`},
	{"empty project", skeRotationWith("project_id = \"\"\nregion = \"eu01\"\ncluster_name = \"prod\""), `project_id`, `at least 1`},
	{"empty region", skeRotationWith("project_id = \"p-1\"\nregion = \"\"\ncluster_name = \"prod\""), `region`, `at least 1`},
	{"cluster name missing", skeRotationWith("project_id = \"p-1\"\nregion = \"eu01\""), `"cluster_name"`, `is required`},
	{"rotate_every too short", skeRotationWith(skeCluster + "rotate_every = \"30m\""), `rotate_every`, `between 1h and 87600h`},
	{"rotate_every not a duration", skeRotationWith(skeCluster + "rotate_every = \"quarterly\""), `rotate_every`, `between 1h and 87600h, such as "720h"; got\s+"quarterly"`},
	{"complete_after negative", skeRotationWith(skeCluster + "complete_after = \"-1h\""), `complete_after`, `between 0s and 8760h`},
	{"complete_after absurd", skeRotationWith(skeCluster + "complete_after = \"9000h\""), `complete_after`, `between 0s and 8760h`},
	{"complete_after not a duration", skeRotationWith(skeCluster + "complete_after = \"soon\""), `complete_after`, `between 0s and 8760h, such as "168h"; got\s+"soon"`},
	{"complete_after in weeks", skeRotationWith(skeCluster + "complete_after = \"1w\""), `complete_after`, `no\s+days,\s+weeks`},
	{"complete of the wrong type", skeRotationWith(skeCluster + "complete = \"yes please\""), `"complete"`, `a bool is required`},
	{"keepers of the wrong type", skeRotationWith(skeCluster + "keepers = \"OPS-1\""), `"keepers"`, `map of string required`},
	{"a null keeper", skeRotationWith(skeCluster + "keepers = { ticket = null }"), `keepers`, `null`},
	{"negative timeout", skeRotationWith(skeCluster + "timeouts {\nupdate = \"-1h\"\n}"), `timeouts.update`, `must be a positive Go duration`},
	{"timeout not a duration", skeRotationWith(skeCluster + "timeouts {\ncreate = \"forever\"\n}"), `create = "forever"`, `must be a string containing a sequence of decimal numbers`},
	{"no STACKIT credentials", "provider \"kubecreds\" {\nstackit {\nservice_account_key = \"\"\nservice_account_token = \"\"\n}\n}\n" + skeRotationWith(skeCluster), `stackit.service_account_key_path`, `STACKIT_SERVICE_ACCOUNT_TOKEN`},
	{"no STACKIT credentials: every way named", "provider \"kubecreds\" {\nstackit {\nservice_account_key = \"\"\n}\n}\n" + skeRotationWith(skeCluster), `Missing STACKIT credentials`,
		`service_account_email.*service_account_federated_token_path.*use_oidc.*service_account_key_path.*credentials_path.*STACKIT_CREDENTIALS_PATH.*service_account_token`},
	{"SKE endpoint not https", skeProviderWith("ske_custom_endpoint = \"http://ske.example\""), `ske_custom_endpoint`, `must be an https:// URL with a host`},
	{"SKE endpoint without a host", skeProviderWith("ske_custom_endpoint = \"https://\""), `ske_custom_endpoint`, `must be an https:// URL with a host`},
	{"key file missing", skeProviderWith("service_account_key_path = \"/nonexistent/sa-key.json\""), `service_account_key_path`, `cannot be read`},
	{"private key file missing", skeProviderWith("service_account_key_path = \"/dev/null\"\nprivate_key_path = \"/nonexistent/key.pem\""), `private_key_path`, `cannot be read`},
	{"token endpoint not https", skeProviderWith("token_custom_endpoint = \"http://user:s3cr3t-token-pass@idp.example/token\""), `token_custom_endpoint`, `"http://user:xxxxx@idp.example/token"; it must be an https:// URL`},
	{"credentials file missing", skeProviderWith("credentials_path = \"/nonexistent/credentials.json\""), `credentials_path`, `cannot be read`},
	{"federated token file missing", skeProviderWith("service_account_email = \"ci@sa.stackit.cloud\"\nservice_account_federated_token_path = \"/nonexistent/token\""), `service_account_federated_token_path`, `cannot be read`},
	{"federation without the account's email", skeProviderWith("service_account_federated_token = \"eyJhbGciOiJSUzI1NiJ9.e30.c2ln\""), `service_account_email`, `needs the service account's email`},
	{"use_oidc outside a CI system", skeProviderWith("service_account_email = \"ci@sa.stackit.cloud\"\nuse_oidc = true\noidc_request_url = \"\""), `use_oidc`, `ACTIONS_ID_TOKEN_REQUEST_URL`},

	// kubecreds_ske_kubeconfig
	{"ttl too short", skeEphemeralWith(skeCluster + "ttl = \"5m\""), `ttl`, `between 10m and 4320h`},
	{"ttl too long", skeEphemeralWith(skeCluster + "ttl = \"5000h\""), `ttl`, `between 10m and 4320h`},
	{"ttl not a duration", skeEphemeralWith(skeCluster + "ttl = \"1 hour\""), `ttl`, `between 10m and 4320h`},
	{"ephemeral cluster name invalid", skeEphemeralWith("project_id = \"p-1\"\nregion = \"eu01\"\ncluster_name = \"Bad_Name\""), `cluster_name`, `1 to 11 lowercase letters, digits and hyphens`},
	{"ephemeral project missing", skeEphemeralWith("region = \"eu01\"\ncluster_name = \"prod\""), `"project_id"`, `is required`},
}

// TestAccSKEBadInputCatalogue: each bad configuration of the SKE types fails at
// validate or plan, naming the attribute and what it allows, and none
// reaches the SKE API.
//
// Not parallel: it counts every request the SKE API gets meanwhile.
func TestAccSKEBadInputCatalogue(t *testing.T) {
	if len(skeBadInputs) < 15 {
		t.Fatalf("the catalogue holds %d configurations; it is meant to hold at least 15", len(skeBadInputs))
	}
	_, api := sharedSKECluster(t)
	before := len(api.Requests())
	rejected := runCatalogue(t, skeBadInputs)
	calls := len(api.Requests()) - before
	t.Logf("SKE bad input catalogue: %d of %d configurations rejected at validate/plan; SKE API requests made: %d", rejected, len(skeBadInputs), calls)
	if calls != 0 {
		t.Errorf("the bad configurations made %d SKE API requests; want none", calls)
	}
}
