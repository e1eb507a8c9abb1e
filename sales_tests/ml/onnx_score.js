// Scores order lines with model.onnx in onnxruntime-node, as a JavaScript client would: one [n, 1] tensor
// per input that metadata.json lists (float64 or string), no feature engineering. Used by test_onnx_node.py.
// Usage: node onnx_score.js model.onnx rows.json metadata.json  ->  JSON list of predictions on stdout
const ort = require("onnxruntime-node");
const fs = require("fs");
async function main() {
  const [modelPath, rowsPath, metadataPath] = process.argv.slice(2);
  const metadata = JSON.parse(fs.readFileSync(metadataPath, "utf8"));
  const rows = JSON.parse(fs.readFileSync(rowsPath, "utf8"));
  const session = await ort.InferenceSession.create(modelPath);
  const feeds = {};
  for (const input of metadata.onnx.inputs) {
    const values = rows.map((row) => row[input.name]);
    feeds[input.name] = input.type === "string"
      ? new ort.Tensor("string", values.map(String), [rows.length, 1])
      : new ort.Tensor(input.type, input.type === "float64" ? Float64Array.from(values) : Float32Array.from(values), [rows.length, 1]);
  }
  const results = await session.run(feeds);
  process.stdout.write(JSON.stringify(Array.from(results[metadata.onnx.output].data, Number)));
}
main().catch((error) => { console.error(error); process.exit(1); });
