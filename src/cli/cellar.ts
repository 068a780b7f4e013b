#!/usr/bin/env node
/**
 * The `cellar` command (docs/CLI.md). The program and its commands: program.ts; each command module
 * imports what it needs when it runs, so `generate` with nothing changed decides to skip from a content
 * hash (generate-stamp.ts) without loading ts-morph, buf, the plugin or the runtime.
 */
import { run } from "./program.js";

process.exitCode = await run(process.argv.slice(2));
