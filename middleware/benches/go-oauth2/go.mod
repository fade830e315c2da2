module example.invalid/clientcreds/benches/go-oauth2

go 1.26

require golang.org/x/oauth2 v0.36.0
