// What greet() must do; the last test fails until the demo's change lands.
const assert = require('node:assert/strict');
const test = require('node:test');
const { greet } = require('../src/greet');

test('greets a person by name', () => {
  assert.equal(greet('Ada'), 'Hello, Ada!');
});

test('trims spaces around the name', () => {
  assert.equal(greet('  Grace '), 'Hello, Grace!');
});

test('greets the world when the name is missing or blank', () => {
  assert.equal(greet(), 'Hello, world!');
  assert.equal(greet('   '), 'Hello, world!');
});
