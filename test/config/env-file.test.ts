import {describe, expect, it} from 'vitest'
import {parseEnvFile} from '../../src/sim/config/env-file.js'

describe('dotenv files (envFile)', () => {
  it('reads NAME=VALUE lines as compose does: comments, export, quotes, escapes, a later line winning', () => {
    const {vars, issues} = parseEnvFile(
      [
        '# the database',
        'export DATABASE_URL=postgres://localhost/dev   # local only',
        '  INDENTED = spaced out  ',
        'GREETING="hello\\nworld \\"quoted\\""  # a comment after quotes',
        "RAW='a $b \\n stays'",
        'HASH=a#b',
        'EMPTY=',
        'EQUALS=a=b=c',
        'DATABASE_URL=postgres://localhost/override',
        '',
      ].join('\n'),
    )
    expect(issues).toEqual([])
    expect(vars).toEqual({
      DATABASE_URL: 'postgres://localhost/override',
      INDENTED: 'spaced out',
      GREETING: 'hello\nworld "quoted"',
      RAW: 'a $b \\n stays',
      HASH: 'a#b',
      EMPTY: '',
      EQUALS: 'a=b=c',
    })
  })

  it('says what is wrong with a line, and where; the other lines still count', () => {
    const {vars, issues} = parseEnvFile(['OK=1', 'no equals here', '  1X=2', 'Q="open', "S='a' trailing", 'CRLF=yes\r'].join('\n'))
    expect(vars).toEqual({OK: '1', CRLF: 'yes'})
    expect(issues).toEqual([
      {line: 2, column: 1, message: 'expected NAME=VALUE with NAME of letters, digits and _, got "no equals here" (no =)'},
      {line: 3, column: 3, message: 'expected NAME=VALUE with NAME of letters, digits and _, got "1X" before the ='},
      {line: 4, column: 3, message: 'expected a closing " on the same line'},
      {line: 5, column: 6, message: `expected nothing but a # comment after the closing ', got "trailing"`},
    ])
  })
})
