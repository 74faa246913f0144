package pgtest

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"
)

// EnvImage names the environment variable that overrides the Docker image.
const EnvImage = "REALMHOOK_TEST_POSTGRES_IMAGE"

const defaultImage = "postgres:16-alpine"

// dockerCheckTimeout bounds how long a missing or wedged Docker engine can
// delay falling through to the next source.
const dockerCheckTimeout = 3 * time.Second

func fromDocker(ctx context.Context) (*server, error) {
	if err := dockerAnswers(ctx); err != nil {
		return nil, err
	}
	image := os.Getenv(EnvImage)
	if image == "" {
		image = defaultImage
	}
	ctr, err := tcpostgres.Run(ctx, image,
		tcpostgres.WithDatabase("postgres"),
		tcpostgres.BasicWaitStrategies(),
		testcontainers.WithCmd("postgres", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=300"),
	)
	if err != nil {
		if ctr != nil {
			_ = ctr.Terminate(context.Background())
		}
		return nil, fmt.Errorf("start container %s: %w", image, err)
	}
	u, err := ctr.ConnectionString(ctx, "sslmode=disable")
	if err != nil {
		_ = ctr.Terminate(context.Background())
		return nil, fmt.Errorf("container connection string: %w", err)
	}
	v, err := serverVersion(ctx, u)
	if err != nil {
		_ = ctr.Terminate(context.Background())
		return nil, err
	}
	return &server{
		source:   SourceTestcontainers,
		adminURL: u,
		version:  v,
		stop:     func() error { return ctr.Terminate(context.Background()) },
	}, nil
}

// dockerAnswers reports whether a Docker engine answers an Info call quickly.
func dockerAnswers(ctx context.Context) (err error) {
	ctx, cancel := context.WithTimeout(ctx, dockerCheckTimeout)
	defer cancel()
	// The Docker client panics on some malformed environments; treat that as
	// "no engine" rather than failing every test.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("docker client: %v", r)
		}
	}()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return fmt.Errorf("no engine answers: %w", err)
	}
	defer cli.Close()
	if _, err := cli.Info(ctx, client.InfoOptions{}); err != nil {
		return fmt.Errorf("no engine answers: %w", err)
	}
	return nil
}
