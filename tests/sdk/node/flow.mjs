// Drives posthog-node for tests/e2e/test_posthog_node.py: reads one JSON object on stdin, prints
// one JSON object on stdout. Decides nothing: the test says what to send and asserts the answers.
//
// Input: {host, apiKey, personalApiKey?, nodeModules,
//         calls?: [{method: "capture" | "identify" | "alias", args: {...}}],   one client, then shutdown()
//         flags?: {keys: [...], users: [[distinctId, personProperties], ...]}}
// Output: {errors: [...], remote?: {id: {key: answer}}, local?: {id: {key: answer}}, localReady?, localKeys?}
//   where an answer is {flag, payload, evaluated, evaluatedPayload} (remote) or
//   {flag, payload, localOnly} (local); `undefined` is sent as null.
import { createRequire } from 'node:module'
import { join } from 'node:path'

const input = JSON.parse(await new Promise((resolve, reject) => {
    let text = ''
    process.stdin.setEncoding('utf8')
    process.stdin.on('data', (chunk) => (text += chunk))
    process.stdin.on('end', () => resolve(text))
    process.stdin.on('error', reject)
}))

// The SDK lives in the test run's npm cache (tests/node_sdks.py), not beside this script: require
// it from there. Its CommonJS entry is one of the two it publishes (`exports.node.require`).
const require = createRequire(join(input.nodeModules, 'noop.js'))
const { PostHog } = require('posthog-node')

const errors = []
const output = { errors }
const orNull = (value) => (value === undefined ? null : value)

function client(options) {
    const sdk = new PostHog(input.apiKey, {
        host: input.host,
        // No $feature_flag_called events: the flag reads below are checks, not exposures.
        sendFeatureFlagEvent: false,
        fetchRetryCount: 1,
        ...options,
    })
    sdk.on('error', (error) => errors.push(String(error?.stack ?? error)))
    return sdk
}

if (input.calls) {
    const sdk = client({ flushAt: 100, flushInterval: 60_000 })
    for (const { method, args } of input.calls) {
        if (!['capture', 'identify', 'alias'].includes(method)) throw new Error(`unknown call ${method}`)
        sdk[method](args)
    }
    await sdk.flush()
    await sdk.shutdown()
}

if (input.flags) {
    const { keys, users } = input.flags
    const remote = client({})
    output.remote = {}
    for (const [distinctId, personProperties] of users) {
        const options = { personProperties }
        const evaluated = await remote.evaluateFlags(distinctId, options)
        const answers = {}
        for (const key of keys) {
            answers[key] = {
                flag: orNull(await remote.getFeatureFlag(key, distinctId, options)),
                payload: orNull(await remote.getFeatureFlagPayload(key, distinctId, undefined, options)),
                evaluated: orNull(evaluated.getFlag(key)),
                evaluatedPayload: orNull(evaluated.getFlagPayload(key)),
            }
        }
        output.remote[distinctId] = answers
    }
    await remote.shutdown()

    const local = client({ personalApiKey: input.personalApiKey, featureFlagsPollingInterval: 60_000 })
    output.localReady = await local.waitForLocalEvaluationReady(10_000)
    // The definitions the poller loaded (not public API: the only way to list them).
    output.localKeys = Object.keys(local.featureFlagsPoller?.featureFlagsByKey ?? {}).sort()
    output.local = {}
    for (const [distinctId, personProperties] of users) {
        const options = { personProperties }
        const onlyLocally = { personProperties, onlyEvaluateLocally: true }
        const answers = {}
        for (const key of keys) {
            answers[key] = {
                flag: orNull(await local.getFeatureFlag(key, distinctId, options)),
                payload: orNull(await local.getFeatureFlagPayload(key, distinctId, undefined, options)),
                localOnly: orNull(await local.getFeatureFlag(key, distinctId, onlyLocally)),
            }
        }
        output.local[distinctId] = answers
    }
    await local.shutdown()
}

process.stdout.write(JSON.stringify(output))
