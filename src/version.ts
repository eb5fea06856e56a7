// The product version, kept in step with package.json by a unit test.
export const TANDEM_VERSION = '0.1.0';
