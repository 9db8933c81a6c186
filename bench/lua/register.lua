-- POST one RFC 7591 registration (a public client of an MCP desktop app) per request.
wrk.method = "POST"
wrk.path = "/register"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"redirect_uris":["http://127.0.0.1:33418/callback"],"token_endpoint_auth_method":"none",'
  .. '"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"client_name":"bench client"}'
