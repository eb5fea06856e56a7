// Builds the greeting the sample app prints.
function greet(name) {
  return 'Hello, ' + name + '!';
}

module.exports = { greet };
