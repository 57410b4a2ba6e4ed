-- wrk script for token issue: POST the password-auth body that bench-identity.sh puts in
-- BENCH_BODY, so both servers get the very same bytes.
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
