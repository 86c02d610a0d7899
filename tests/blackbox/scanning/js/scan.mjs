// The scanning API through the AWS SDK for JavaScript v3 (@aws-sdk/client-ecr): its own client
// (which signs with SigV4), its waiter and its paginator. test_sdk_js.py runs it.
//
//   node scan.mjs configure SCAN_TYPE FILTER        PutRegistryScanningConfiguration (a SCAN_ON_PUSH
//                                                   rule for FILTER), then prints GetRegistry...'s answer
//   node scan.mjs scan REPO DIGEST PAGE_SIZE [start] (StartImageScan,) waitUntilImageScanComplete,
//                                                   then every page of DescribeImageScanFindings
//   node scan.mjs describe REPO DIGEST              one DescribeImageScanFindings; an error is printed
//
// The environment gives BERTH_ENDPOINT, AWS_REGION, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
// Prints one JSON document on stdout; Dates are checked here (the SDK made them) and printed as
// ISO strings. Any error the SDK throws (a shape it cannot read, a status it does not expect) ends
// the script with a non-zero status and the error's name and message on stderr.

import {
  ECRClient,
  DescribeImageScanFindingsCommand,
  GetRegistryScanningConfigurationCommand,
  PutRegistryScanningConfigurationCommand,
  StartImageScanCommand,
  paginateDescribeImageScanFindings,
  waitUntilImageScanComplete,
} from "@aws-sdk/client-ecr";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

const client = new ECRClient({
  endpoint: env("BERTH_ENDPOINT"),
  region: env("AWS_REGION"),
  credentials: { accessKeyId: env("AWS_ACCESS_KEY_ID"), secretAccessKey: env("AWS_SECRET_ACCESS_KEY") },
  maxAttempts: 1,
});

const SCAN_TIMEOUT = Number(process.env.BERTH_SCAN_TEST_TIMEOUT || "90");

// Every Date the SDK produced must be a valid one.
function checkDates(value, path, dates) {
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw new Error(`${path} is an invalid Date`);
    dates.push(path);
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => checkDates(v, `${path}[${i}]`, dates));
  } else if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) checkDates(v, `${path}.${k}`, dates);
  }
  return dates;
}

async function configure(scanType, filter) {
  await client.send(new PutRegistryScanningConfigurationCommand({
    scanType,
    rules: [{ scanFrequency: "SCAN_ON_PUSH", repositoryFilters: [{ filter, filterType: "WILDCARD" }] }],
  }));
  const got = await client.send(new GetRegistryScanningConfigurationCommand({}));
  return { registryId: got.registryId, scanningConfiguration: got.scanningConfiguration };
}

async function scan(repositoryName, imageDigest, pageSize, start) {
  const imageId = { imageDigest };
  const out = { repositoryName, imageDigest };
  if (start) {
    const r = await client.send(new StartImageScanCommand({ repositoryName, imageId }));
    out.start = { status: r.imageScanStatus?.status, imageId: r.imageId, repositoryName: r.repositoryName };
  }
  const waited = await waitUntilImageScanComplete(
    { client, minDelay: 1, maxDelay: 2, maxWaitTime: SCAN_TIMEOUT },
    { repositoryName, imageId },
  );
  out.waiter = { state: waited.state, status: waited.reason?.imageScanStatus?.status };
  const findings = [];
  const enhancedFindings = [];
  const pageSizes = [];
  let first;
  for await (const page of paginateDescribeImageScanFindings(
    { client, pageSize },
    { repositoryName, imageId },
  )) {
    first ??= page;
    const f = page.imageScanFindings ?? {};
    findings.push(...(f.findings ?? []));
    enhancedFindings.push(...(f.enhancedFindings ?? []));
    pageSizes.push((f.findings ?? []).length + (f.enhancedFindings ?? []).length);
  }
  const dates = checkDates({ first, findings, enhancedFindings }, "", []);
  Object.assign(out, {
    status: first.imageScanStatus?.status,
    imageScanCompletedAt: first.imageScanFindings?.imageScanCompletedAt ?? null,
    vulnerabilitySourceUpdatedAt: first.imageScanFindings?.vulnerabilitySourceUpdatedAt ?? null,
    findingSeverityCounts: first.imageScanFindings?.findingSeverityCounts ?? {},
    findings,
    enhancedFindings,
    pageSizes,
    dates: dates.length,
  });
  return out;
}

async function describe(repositoryName, imageDigest) {
  try {
    const r = await client.send(new DescribeImageScanFindingsCommand({ repositoryName, imageId: { imageDigest } }));
    return { ok: true, status: r.imageScanStatus?.status };
  } catch (err) {
    return {
      ok: false,
      name: err.name,
      message: err.message,
      httpStatusCode: err.$metadata?.httpStatusCode,
      fault: err.$fault,
      isModelledException: err.constructor?.name === err.name,
    };
  }
}

const [cmd, ...args] = process.argv.slice(2);
let result;
try {
  if (cmd === "configure") result = await configure(args[0], args[1]);
  else if (cmd === "scan") result = await scan(args[0], args[1], Number(args[2]), args[3] === "start");
  else if (cmd === "describe") result = await describe(args[0], args[1]);
  else throw new Error(`unknown command ${cmd}`);
} catch (err) {
  process.stderr.write(`${err.name}: ${err.message}\n${err.stack}\n`);
  process.exit(1);
}
process.stdout.write(JSON.stringify(result) + "\n");
