-- wrk script: GET one secret (the path is passed as wrk's URL).
wrk.method = "GET"
wrk.headers["Accept"] = "application/json"
