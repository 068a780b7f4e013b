#!/usr/bin/env node
// Entry point of the protoc plugin (package.json `bin`). buf runs it with a CodeGeneratorRequest on stdin.
import { runNodeJs } from "@bufbuild/protoplugin";
import { protocGenCellar } from "./plugin.js";

runNodeJs(protocGenCellar);
