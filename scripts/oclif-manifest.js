// Writes oclif.manifest.json after each build: with it, `mesh <command>` loads only that
// command's module; without it oclif imports every command (blessed included) on every run
// to learn their flags. Generated, never committed: a stale one would hide a new flag.
import {rmSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {Config} from '@oclif/core'

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
const file = path.join(root, 'oclif.manifest.json')
rmSync(file, {force: true})
const config = await Config.load({root})
const plugin = config.getPluginsList().find((p) => p.root === root)
if (!plugin) throw new Error(`oclif did not load the plugin at ${root}`)
writeFileSync(file, JSON.stringify(plugin.manifest))
