// Drives loopkit proxy's API with toxiproxy-node-client, unchanged: argv[2] is the API
// URL, argv[3] an upstream address. Prints one JSON line per step for the Python test.
const { Toxiproxy } = require("toxiproxy-node-client");

async function main() {
  const api = process.argv[2], upstream = process.argv[3];
  const tp = new Toxiproxy(api);
  const out = (step, v) => console.log(JSON.stringify({ step, v }));
  out("version", await tp.getVersion());
  const p = await tp.createProxy({ name: "node", listen: "127.0.0.1:0", upstream });
  out("create", p.toJson());
  out("list", Object.keys(await tp.getAll()));
  const t = await p.addToxic({ type: "latency", attributes: { latency: 120, jitter: 5 } });
  out("add", t.toJson());
  const t2 = await t.update({ attributes: { latency: 80 }, toxicity: 0.5 });
  out("update", t2.toJson());
  out("get", (await p.getToxic(t.name)).toJson());
  const b = await p.addToxic({ type: "bandwidth", stream: "upstream", name: "slow", attributes: { rate: 100 } });
  out("add2", b.toJson());
  await b.remove();
  const raw = async (path) => (await tp.getApi().get(`${api}${path}`)).data;
  out("after_remove", await raw("/proxies/node/toxics"));
  const off = await p.update({ enabled: false, listen: p.listen, upstream });
  out("disable", off.toJson());
  const on = await p.update({ enabled: true, listen: p.listen, upstream });
  out("enable", on.toJson());
  await tp.reset();
  out("reset", await raw("/proxies/node"));
  const pops = await tp.populate([
    { name: "node", listen: p.listen, upstream },
    { name: "pop2", listen: "127.0.0.1:0", upstream },
  ]);
  out("populate", Object.keys(pops).sort());
  try {
    await tp.createProxy({ name: "node", listen: "127.0.0.1:0", upstream });
    out("duplicate", "accepted");
  } catch (e) {
    out("duplicate", e.message);
  }
  try {
    await p.addToxic({ type: "nonsense" });
    out("bad_type", "accepted");
  } catch (e) {
    out("bad_type", e.message);
  }
  await (await tp.get("pop2")).remove();
  out("final", Object.keys(await tp.getAll()).sort());
}

main().catch((e) => { console.error(e); process.exit(1); });
