package load

import (
	"context"
	"fmt"
	"net/http"
)

// Register creates n chatd accounts through POST /api/auth/register
// (emails <prefix><i>@bench.example), at most parallel at a time.
func Register(ctx context.Context, baseURL string, n, parallelism int, prefix string) ([]User, error) {
	users := make([]User, n)
	err := parallel(ctx, n, max(parallelism, 1), func(ctx context.Context, i int) error {
		var out struct {
			Token string `json:"token"`
			User  struct {
				ID string `json:"id"`
			} `json:"user"`
		}
		body := map[string]string{"email": fmt.Sprintf("%s%d@bench.example", prefix, i),
			"password": "bench password", "name": fmt.Sprintf("Bench %d", i)}
		if err := postJSON(ctx, baseURL+"/api/auth/register", "", body, http.StatusCreated, &out); err != nil {
			return err
		}
		users[i] = User{ID: out.User.ID, Token: out.Token}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return users, nil
}
