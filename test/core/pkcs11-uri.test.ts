/** RFC 7512 PKCS#11 URIs: the examples of §3.3, and the refusals that keep a typo from matching any key. */
import { describe, expect, it } from 'vitest';
import { parsePkcs11Uri, redactPkcs11Uri } from '../../src/core/pkcs11-uri.js';

describe('RFC 7512 §3.3 examples', () => {
  it('pkcs11: alone names nothing in particular', () => {
    expect(parsePkcs11Uri('pkcs11:')).toEqual({ path: {}, query: {} });
  });

  it('object and type, with a pin-source', () => {
    expect(parsePkcs11Uri('pkcs11:object=my-key;type=private?pin-source=file:/etc/token')).toEqual({
      path: { object: 'my-key', type: 'private' },
      query: { 'pin-source': 'file:/etc/token' },
    });
  });

  it('percent-encoded token, manufacturer and a binary id; an empty serial', () => {
    const uri =
      'pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;type=cert;id=%69%95%3E%5C%F4%BE%2D%C3%10%DB%3E%BA%CE%BE%5C%AB%EB%8A%5D%77%8F;serial=?pin-source=file:/etc/token_pin';
    const parsed = parsePkcs11Uri(uri);
    expect(parsed.path).toEqual({
      token: 'The Software PKCS#11 Softtoken',
      manufacturer: 'Snake Oil, Inc.',
      model: '1.0',
      object: 'my-certificate',
      type: 'cert',
      serial: '',
    });
    expect(Buffer.from(parsed.id!).toString('hex')).toBe('69953e5cf4be2dc310db3ebacebe5cabeb8a5d778f');
    expect(parsed.query).toEqual({ 'pin-source': 'file:/etc/token_pin' });
  });

  it('module-name, module-path and pin-value', () => {
    expect(parsePkcs11Uri('pkcs11:object=my-sign-key;type=private?module-name=mypkcs11').query).toEqual({
      'module-name': 'mypkcs11',
    });
    expect(
      parsePkcs11Uri('pkcs11:object=my-sign-key;type=private?module-path=/mnt/libmypkcs11.so.1').query,
    ).toEqual({ 'module-path': '/mnt/libmypkcs11.so.1' });
    expect(
      parsePkcs11Uri(
        'pkcs11:token=Software%20PKCS%2311%20softtoken;manufacturer=Snake%20Oil,%20Inc.?pin-value=the-pin',
      ).query,
    ).toEqual({ 'pin-value': 'the-pin' });
  });

  it('slot and library attributes, mixed-case hex, an escaped ";" and UTF-8', () => {
    expect(parsePkcs11Uri('pkcs11:slot-description=Sun%20Metaslot').path).toEqual({
      'slot-description': 'Sun Metaslot',
    });
    expect(
      parsePkcs11Uri(
        'pkcs11:library-manufacturer=Snake%20Oil,%20Inc.;library-description=Soft%20Token%20Library;library-version=1.23',
      ).path,
    ).toEqual({
      'library-manufacturer': 'Snake Oil, Inc.',
      'library-description': 'Soft Token Library',
      'library-version': '1.23',
    });
    const joe = parsePkcs11Uri(
      'pkcs11:token=My%20token%25%20created%20by%20Joe;library-version=3;id=%01%02%03%Ba%dd%Ca%fe%04%05%06',
    );
    expect(joe.path.token).toBe('My token% created by Joe');
    expect(Buffer.from(joe.id!).toString('hex')).toBe('010203baddcafe040506');
    expect(
      parsePkcs11Uri('pkcs11:token=A%20name%20with%20a%20substring%20%25%3B;object=my-certificate;type=cert')
        .path.token,
    ).toBe('A name with a substring %;');
    expect(
      parsePkcs11Uri(
        'pkcs11:token=Name%20with%20a%20small%20A%20with%20acute:%20%C3%A1;object=my-certificate;type=cert',
      ).path.token,
    ).toBe('Name with a small A with acute: á');
  });
});

describe('refusals', () => {
  it.each([
    ['pkcs11:objet=audit', /path attribute "objet"/],
    ['pkcs11:token=my-token;object=my-certificate;type=cert;vendor-aaa=value-a', /"vendor-aaa"/],
    ['pkcs11:object=a?pin-source=file:/p&vendor-bbb=b', /query attribute "vendor-bbb"/],
    ['pkcs11:object=a;object=b', /"object" appears twice/],
    ['pkcs11:object=a?pin-value=1&pin-source=file:/p', /both pin-value and pin-source/],
    ['pkcs11:id=%zz', /"%zz" is not a percent-encoded octet/],
    ['pkcs11:object=%ff%fe', /not UTF-8/],
    ['pkcs11:object', /"object" is not name=value/],
    ['pkcs11:type=key', /type=key is not one of/],
    ['file:/etc/key', /does not start with pkcs11:/],
  ])('%s is refused', (uri, why) => {
    expect(() => parsePkcs11Uri(uri)).toThrow(why);
  });

  it('a PIN in the URI never reaches a message', () => {
    expect(() => parsePkcs11Uri('pkcs11:objet=a?pin-value=s3cret')).toThrow(/pin-value=\*\*\*/);
    expect(() => parsePkcs11Uri('pkcs11:objet=a?pin-value=s3cret')).not.toThrow(/s3cret/);
    expect(redactPkcs11Uri('pkcs11:object=a?module-path=/m.so&pin-value=s3cret')).toBe(
      'pkcs11:object=a?module-path=/m.so&pin-value=***',
    );
  });
});
