// Validates a HAR file with npm's har-validator: argv[2] is the file. Exit 0 when valid.
const validate = require("har-validator");
const har = JSON.parse(require("fs").readFileSync(process.argv[2], "utf8"));
validate.har(har)
  .then(() => console.log(JSON.stringify({ valid: true, entries: har.log.entries.length })))
  .catch((e) => { console.log(JSON.stringify({ valid: false, errors: e.errors || String(e) })); process.exit(1); });
