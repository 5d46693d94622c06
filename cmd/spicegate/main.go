// Command spicegate is Spicegate's single binary: the authorization service
// and its operator tools. Run `spicegate --help` for the commands.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spicegate/spicegate/internal/cmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cmd.NewRootCommand().ExecuteContext(ctx)
	stop()
	if err != nil {
		msg, status := cmd.Describe(err)
		fmt.Fprintln(os.Stderr, "spicegate:", msg)
		os.Exit(status)
	}
}
