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
		// Sign-ups are limited per client address: each account comes
		// from an address of its own, which chatd believes when it trusts
		// 127.0.0.1 as a proxy (CHATD_TRUSTED_PROXIES) and ignores otherwise.
		h := http.Header{"X-Forwarded-For": {fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)}}
		if err := postWith(ctx, baseURL+"/api/auth/register", h, body, http.StatusCreated, &out); err != nil {
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
