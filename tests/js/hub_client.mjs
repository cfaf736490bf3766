// Drives the simulator's hubs with the official Microsoft SignalR client (@microsoft/signalr), as the ProjectX
// docs' sample does: skipNegotiation + WebSockets + accessTokenFactory, withAutomaticReconnect.
//
// Usage: node hub_client.mjs <baseUrl> <userName> <apiKey> <accountId> <contractId>
// Prints progress lines "STEP <name>" (the pytest side may react to them, e.g. arm a fault) and, at the end, one
// line "RESULT <json>" with everything observed. Exits 0 when the run completed, 1 on any failure.
import * as signalR from "@microsoft/signalr";

const [baseUrl, userName, apiKey, accountIdText, contractId] = process.argv.slice(2);
const accountId = Number(accountIdText);
const result = { events: {}, errors: [], steps: [] };
const step = (name) => { result.steps.push(name); console.log(`STEP ${name}`); };
const record = (name, args) => { (result.events[name] ??= []).push(args); };

function waitFor(predicate, what, ms = 15000) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const timer = setInterval(() => {
      const value = predicate();
      if (value) { clearInterval(timer); resolve(value); }
      else if (Date.now() - started > ms) { clearInterval(timer); reject(new Error(`timed out waiting for ${what}`)); }
    }, 20);
  });
}

async function post(path, body, token) {
  const headers = { "Content-Type": "application/json", accept: "text/plain" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(`${baseUrl}${path}`, { method: "POST", headers, body: JSON.stringify(body) });
  const text = await response.text();
  if (!response.ok) throw new Error(`${path} answered HTTP ${response.status}: ${text.slice(0, 200)}`);
  return JSON.parse(text);
}

function build(hub, token, { tokenInUrl }) {
  const url = tokenInUrl ? `${baseUrl}/hubs/${hub}?access_token=${encodeURIComponent(token)}` : `${baseUrl}/hubs/${hub}`;
  return new signalR.HubConnectionBuilder()
    .withUrl(url, {
      skipNegotiation: true,
      transport: signalR.HttpTransportType.WebSockets,
      accessTokenFactory: () => token,
      timeout: 10000,
    })
    .withAutomaticReconnect([0, 500, 1000, 2000])
    .configureLogging(signalR.LogLevel.Warning)
    .build();
}

async function main() {
  const login = await post("/api/Auth/loginKey", { userName, apiKey });
  if (!login.success || !login.token) throw new Error(`login failed: errorCode ${login.errorCode}`);
  const token = login.token;
  step("login");

  // User hub: the DOC sample's way (token in the URL and from the factory).
  const user = build("user", token, { tokenInUrl: true });
  for (const name of ["GatewayUserAccount", "GatewayUserOrder", "GatewayUserPosition", "GatewayUserTrade"]) {
    user.on(name, (...args) => record(name, args));
  }
  const subscribeUser = async () => {
    await user.invoke("SubscribeAccounts");
    await user.invoke("SubscribeOrders", accountId);
    await user.invoke("SubscribePositions", accountId);
    await user.invoke("SubscribeTrades", accountId);
  };
  let reconnected = 0;
  user.onreconnecting((error) => { result.reconnectingError = error ? String(error.message ?? error) : null; });
  user.onreconnected(async () => { reconnected += 1; await subscribeUser(); step("user-resubscribed"); });
  await user.start();
  await subscribeUser();
  step("user-subscribed");
  try {
    await user.invoke("SubscribeToOrders", accountId);
    result.errors.push("unknown method did not fail");
  } catch (error) {
    result.unknownMethodError = String(error.message ?? error);
  }

  // Market hub: the Node way (token only from accessTokenFactory -> Authorization header on the upgrade).
  const market = build("market", token, { tokenInUrl: false });
  market.on("GatewayQuote", (...args) => record("GatewayQuote", args));
  await market.start();
  await market.invoke("SubscribeContractQuotes", contractId);
  step("market-subscribed");

  const placed = await post("/api/Order/place", { accountId, contractId, type: 2, side: 0, size: 1 }, token);
  if (!placed.success) throw new Error(`Order/place failed: errorCode ${placed.errorCode} ${placed.errorMessage}`);
  result.orderId = placed.orderId;
  step("order-placed");

  const trades = () => result.events.GatewayUserTrade ?? [];
  const positions = () => result.events.GatewayUserPosition ?? [];
  const orders = () => result.events.GatewayUserOrder ?? [];
  await waitFor(() => orders().length > 0, "GatewayUserOrder");
  await waitFor(() => trades().length > 0, "GatewayUserTrade");
  await waitFor(() => positions().length > 0, "GatewayUserPosition");
  await waitFor(() => (result.events.GatewayQuote ?? []).length > 0, "GatewayQuote");
  step("events-received");

  // The pytest side arms a ws_close fault when it reads this step; the client must reconnect on its own.
  step("await-reconnect");
  await waitFor(() => reconnected > 0 && result.steps.includes("user-resubscribed"), "reconnect", 20000);
  result.stateAfterReconnect = user.state;

  // A client that negotiates first (POST /hubs/user/negotiate?negotiateVersion=1, then ?id=<connectionToken>).
  const negotiating = new signalR.HubConnectionBuilder()
    .withUrl(`${baseUrl}/hubs/user`, { transport: signalR.HttpTransportType.WebSockets, accessTokenFactory: () => token })
    .configureLogging(signalR.LogLevel.Warning)
    .build();
  await negotiating.start();
  await negotiating.invoke("SubscribeAccounts");
  result.negotiatedConnectionId = negotiating.connectionId;
  await negotiating.stop();
  step("negotiated");

  await user.stop();
  await market.stop();
  step("stopped");
}

try {
  await main();
  console.log(`RESULT ${JSON.stringify(result)}`);
  process.exit(0);
} catch (error) {
  result.errors.push(String(error?.stack ?? error));
  console.log(`RESULT ${JSON.stringify(result)}`);
  process.exit(1);
}
