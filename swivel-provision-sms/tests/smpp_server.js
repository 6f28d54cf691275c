// A small SMPP 3.4 server (SMSC stand-in) for the integration tests, built on the npm
// package `smpp`. The test setup installs that package and runs this script as:
//
//   node smpp_server.js <port> <system_id> <password>
//
// with NODE_PATH pointing at the installed node_modules. Port 0 picks a free port.
//
// It listens on 127.0.0.1 only, and writes one JSON object per line to stdout:
//   {"event":"listening","port":N}                           once, first
//   {"event":"bind","system_id":..,"status":N}               each bind attempt
//   {"event":"submit_sm","destination_addr":..,"dest_addr_ton":..,"dest_addr_npi":..,
//    "source_addr":..,"source_addr_ton":..,"data_coding":..,"message":..,"status":N}
//   {"event":"unbind"}
//   {"event":"dropped"}                                     after a deliberate drop
//
// Behaviour:
//   - bind_transmitter with a wrong system_id: ESME_RINVSYSID; wrong password:
//     ESME_RINVPASWD; anything but bind_transmitter: ESME_RBINDFAIL. The session is then
//     closed.
//   - submit_sm before a successful bind: ESME_RINVBNDSTS.
//   - submit_sm to 15550000001: ESME_RINVDSTADR (invalid destination).
//   - submit_sm to 15550000002: ESME_RTHROTTLED.
//   - submit_sm to 15550000003: ESME_RMSGQFUL.
//   - submit_sm to 15550000009: answered ESME_ROK, then the connection is dropped (a lost
//     bind) so the client must bind again for its next message.
//   - anything else: ESME_ROK with a message id.
//
// It exits when stdin closes (the test process went away) or on SIGTERM.

'use strict';

const smpp = require('smpp');

const port = parseInt(process.argv[2] || '0', 10);
const systemId = process.argv[3] || 'swivel';
const password = process.argv[4] || 'secret';

const INVALID_DEST = '15550000001';
const THROTTLED_DEST = '15550000002';
const QUEUE_FULL_DEST = '15550000003';
const DROP_AFTER_DEST = '15550000009';

let nextId = 1;

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function messageText(pdu) {
  const sm = pdu.short_message;
  if (sm && typeof sm === 'object' && 'message' in sm) {
    return typeof sm.message === 'string' ? sm.message : Buffer.from(sm.message).toString('hex');
  }
  return typeof sm === 'string' ? sm : null;
}

const server = smpp.createServer({ debug: false }, (session) => {
  let bound = false;
  session.on('error', () => {});

  const refuse = (pdu, status) => {
    out({ event: 'bind', system_id: pdu.system_id, status });
    session.send(pdu.response({ command_status: status }));
    session.close();
  };

  session.on('bind_transmitter', (pdu) => {
    if (pdu.system_id !== systemId) return refuse(pdu, smpp.ESME_RINVSYSID);
    if (pdu.password !== password) return refuse(pdu, smpp.ESME_RINVPASWD);
    bound = true;
    out({ event: 'bind', system_id: pdu.system_id, status: 0 });
    session.send(pdu.response({ system_id: 'test-smsc' }));
  });
  session.on('bind_receiver', (pdu) => refuse(pdu, smpp.ESME_RBINDFAIL));
  session.on('bind_transceiver', (pdu) => refuse(pdu, smpp.ESME_RBINDFAIL));

  session.on('submit_sm', (pdu) => {
    let status = smpp.ESME_ROK;
    if (!bound) status = smpp.ESME_RINVBNDSTS;
    else if (pdu.destination_addr === INVALID_DEST) status = smpp.ESME_RINVDSTADR;
    else if (pdu.destination_addr === THROTTLED_DEST) status = smpp.ESME_RTHROTTLED;
    else if (pdu.destination_addr === QUEUE_FULL_DEST) status = smpp.ESME_RMSGQFUL;
    out({
      event: 'submit_sm',
      destination_addr: pdu.destination_addr,
      dest_addr_ton: pdu.dest_addr_ton,
      dest_addr_npi: pdu.dest_addr_npi,
      source_addr: pdu.source_addr,
      source_addr_ton: pdu.source_addr_ton,
      source_addr_npi: pdu.source_addr_npi,
      data_coding: pdu.data_coding,
      message: messageText(pdu),
      status,
    });
    if (status !== smpp.ESME_ROK) {
      session.send(pdu.response({ command_status: status }));
    } else if (pdu.destination_addr === DROP_AFTER_DEST) {
      // Once the answer is written, the connection is cut in both directions (as a
      // crashed or restarted SMSC would), so nothing more is read from this session.
      session.send(pdu.response({ message_id: String(nextId++) }), null, () => {
        session.socket.destroy();
        out({ event: 'dropped' });
      });
    } else {
      session.send(pdu.response({ message_id: String(nextId++) }));
    }
  });

  session.on('enquire_link', (pdu) => session.send(pdu.response()));
  session.on('unbind', (pdu) => {
    out({ event: 'unbind' });
    session.send(pdu.response());
    session.close();
  });
});

server.listen(port, '127.0.0.1', () => {
  out({ event: 'listening', port: server.address().port });
});

process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
process.on('SIGTERM', () => process.exit(0));
