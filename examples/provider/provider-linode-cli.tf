# Without linode_token or LINODE_TOKEN, the token comes from a linode-cli
# config file, as terraform-provider-linode reads it: here the profile "ci"
# of ~/.config/linode, the file linodego looks for first. ua_prefix marks
# this automation's requests in the User-Agent the Linode API sees.
provider "kubecreds" {
  alias = "from_linode_cli"

  config_path    = "~/.config/linode"
  config_profile = "ci"
  ua_prefix      = "acme-ci/1.0"
}
