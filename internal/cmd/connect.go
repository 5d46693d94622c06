package cmd

import (
	"net"
	"strings"

	"github.com/spf13/cobra"

	"github.com/spicegate/spicegate/client"
)

// connFlags are how the operator commands reach a running deployment:
// SpiceDB's gRPC API (the one `spicegate serve` exposes, or a cluster's).
type connFlags struct {
	endpoint    string
	key         string
	insecure    bool
	supportUser string
}

// defaultGRPCAddr is where serve's embedded SpiceDB listens, and where the
// operator commands look for it, unless told otherwise.
const defaultGRPCAddr = "127.0.0.1:50051"

func (f *connFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.endpoint, "spicedb-endpoint", defaultGRPCAddr, "SpiceDB gRPC API of the deployment (host:port)")
	cmd.Flags().StringVar(&f.key, "preshared-key", "", "its preshared key: the one 'spicegate serve' printed or was given (or SPICEGATE_PRESHARED_KEY)")
	cmd.Flags().BoolVar(&f.insecure, "spicedb-insecure", false, "plaintext instead of TLS (always plaintext for loopback endpoints)")
	cmd.Flags().StringVar(&f.supportUser, "support-user", "support", "the vendor support account every organization lists (as serve's --support-user)")
}

// loopback reports whether the endpoint is on this machine.
func loopback(endpoint string) bool {
	host, _, err := net.SplitHostPort(endpoint)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (f *connFlags) connect() (*client.Client, error) {
	opts := []client.Option{client.WithPresharedKey(f.key), client.WithSupportUser(f.supportUser)}
	if f.insecure || loopback(f.endpoint) {
		opts = append(opts, client.WithInsecure())
	}
	return client.New(f.endpoint, opts...)
}
