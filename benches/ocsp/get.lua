-- wrk: GET /ocsp/<request> cycling through the paths in $OCSP_PATHS (one per line).
local paths = {}
for line in io.lines(os.getenv("OCSP_PATHS")) do
  paths[#paths + 1] = line
end
local i = math.random(#paths)
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
