const t0 = performance.now();
const { main } = await import(process.argv[2]);
const t1 = performance.now();
const code = await main(process.argv.slice(1).filter((_, i) => i !== 1));
process.stderr.write(`import ${(t1 - t0).toFixed(0)} ms, run ${(performance.now() - t1).toFixed(0)} ms\n`);
process.exit(code);
