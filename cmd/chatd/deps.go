package main

// These blank imports keep go.mod's requirements in place while the
// packages that use them are being written.
import (
	_ "github.com/FerretDB/FerretDB/ferretdb"
	_ "github.com/coder/websocket"
	_ "github.com/gin-gonic/gin"
	_ "github.com/golang-jwt/jwt/v5"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/sashabaranov/go-openai"
	_ "go.mongodb.org/mongo-driver/v2/mongo"
	_ "golang.org/x/crypto/bcrypt"
	_ "modernc.org/sqlite"
)
