-- wrk: POST /ocsp with the DER request in $OCSP_BODY (it carries a nonce, so every answer is
-- looked up and signed afresh: the responder's cold path).
local f = assert(io.open(os.getenv("OCSP_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/ocsp-request"
