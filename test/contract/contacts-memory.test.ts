/** @module Runs the contacts conformance suite against the embedded backend's state. */
import { MemoryContactState } from '../../src/contacts/state-memory.js';
import { contactsContract } from './contacts.contract.js';

contactsContract('memory', async () => ({ state: new MemoryContactState(), cleanup: async () => undefined }));
