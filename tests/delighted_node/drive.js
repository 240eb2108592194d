// Drives Delighted's official Node client, unchanged, against Closeloop's Delighted-compatible API.
// Run by tests/integration/test_delighted_clients.py: node drive.js <base url> <api key> <scenario json>.
// Prints one JSON object with what the client got back; errors are reported as {type, message, retryAfter}.
'use strict';

const url = require('url');
const delighted = require('delighted');

const [base, key, scenarioJson] = process.argv.slice(2);
const scenario = JSON.parse(scenarioJson || '{}');
const parsed = url.parse(base);
const client = delighted(key, {
  host: parsed.hostname,
  port: Number(parsed.port),
  base: parsed.pathname.replace(/\/$/, ''),
  scheme: parsed.protocol.replace(':', ''),
});

function failure(error) {
  return { type: error.type, message: error.message, retryAfter: error.retryAfter };
}

async function attempt(action) {
  try {
    return { ok: await action() };
  } catch (error) {
    return { error: failure(error) };
  }
}

async function everyone(params) {
  const people = [];
  await client.person.list(params).autoPagingEach((person) => {
    people.push(person.toJSON());
  });
  return people;
}

async function main() {
  const out = {};
  const email = scenario.email;

  out.created = (await client.person.create({
    email, name: 'Nora Node', properties: { plan: 'team', locale: 'en' },
  })).toJSON();
  out.sms = (await client.person.create({
    phone_number: scenario.phone, channel: 'sms', delay: 3600,
  })).toJSON();
  for (const extra of scenario.extra_people) {
    await client.person.create({ email: extra, send: false });
  }
  out.listed = await everyone({ per_page: 4 });

  out.responses = [];
  for (const score of scenario.scores) {
    const response = await client.surveyResponse.create({
      person: out.created.id, score, comment: `scored ${score}`, person_properties: { store: 'Ankara' },
    });
    out.responses.push(response.toJSON());
  }
  out.metrics = (await client.metrics.retrieve()).toJSON();
  out.metrics_none = (await client.metrics.retrieve({ until: new Date(1000 * 1000) })).toJSON();
  out.expanded = (await client.surveyResponse.all({ expand: ['person'], per_page: 100 })).map((r) => {
    const json = r.toJSON();
    json.person = json.person && json.person.toJSON ? json.person.toJSON() : json.person;
    return json;
  });
  const retrieved = await client.surveyResponse.retrieve(out.responses[0].id, { expand: ['person'] });
  retrieved.score = 10;
  retrieved.comment = 'changed my mind';
  const saved = await attempt(() => retrieved.save());
  out.saved = saved.ok ? saved.ok.toJSON() : saved;

  await client.unsubscribe.create({ person_email: email });
  out.unsubscribes = (await client.unsubscribe.all()).map((u) => u.toJSON());
  out.bounces = (await client.bounce.all()).map((b) => b.toJSON());
  out.pending_deleted = await client.surveyRequest.deletePending({ person_email: scenario.pending_email });

  out.wrong_key = await attempt(() => delighted('clk_wrong', {
    host: parsed.hostname, port: Number(parsed.port), base: parsed.pathname.replace(/\/$/, ''), scheme: 'http',
  }).metrics.retrieve());
  out.invalid = await attempt(() => client.surveyResponse.create({ person: out.created.id, score: 11 }));
  out.deleted = await client.person.delete({ email });
  out.deleted_phone = await client.person.delete({ phone_number: scenario.phone });
  out.after_delete = await everyone({ email });
  out.delete_again = await attempt(() => client.person.delete({ email }));
  console.log(JSON.stringify(out));
}

main().catch((error) => {
  console.error(error && error.stack ? error.stack : JSON.stringify(failure(error)));
  process.exit(1);
});
