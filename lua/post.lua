-- A POST with a JSON body, set once through the wrk table (wrk's post.lua).
--   ratebench -R100 -s lua/post.lua http://127.0.0.1:8080/api
wrk.method = "POST"
wrk.body   = '{"name":"ratebench","items":[1,2,3]}'
wrk.headers["Content-Type"] = "application/json"
