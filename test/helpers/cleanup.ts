/** Setup file for every test file: temporary directories made through helpers/temp.ts go at its end. */
import { afterAll } from 'vitest';
import { removeTempDirs } from './temp.js';

afterAll(() => {
  removeTempDirs();
});
