-- wrk script: LIST the secrets of a namespace (100 objects).
wrk.method = "GET"
wrk.headers["Accept"] = "application/json"
